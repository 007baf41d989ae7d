"""Settings embedded in each PNG (a tEXt chunk), so an image dropped back into the studio
brings back everything that made it."""

from __future__ import annotations

import json
from typing import IO, Any

from PIL import Image, PngImagePlugin

KEY = "brandstudio"
MAX_UPLOAD = 32 * 2**20
MAX_PIXELS = 4096 * 4096
FORM_FIELDS = ("preset", "model", "prompt", "quality", "variations", "size", "seed")


class NotAStudioImage(ValueError):
    pass


def png_info(settings: dict[str, Any], details: dict[str, Any]) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text(KEY, json.dumps({"settings": settings, **details}))
    info.add_text("Software", "Brand Studio")
    return info


def read_settings(upload: IO[bytes], size: int) -> dict[str, Any]:
    """The studio form settings stored in an uploaded PNG, or NotAStudioImage with the reason.

    Checked before anything is decoded: the byte size, the format, and the pixel count.
    """
    if size > MAX_UPLOAD:
        raise NotAStudioImage(f"That file is {size / 2**20:.0f} MB; studio PNGs are far smaller.")
    try:
        image = Image.open(upload, formats=["PNG"])
    except Exception:
        raise NotAStudioImage("That is not a PNG image.") from None
    if image.width * image.height > MAX_PIXELS:
        raise NotAStudioImage("That image is larger than any the studio makes.")
    raw = image.info.get(KEY)  # tEXt chunks before the image data are read with the header
    if not raw:
        raise NotAStudioImage("That PNG carries no Brand Studio settings (it was not made here, or was re-saved).")
    try:
        settings = json.loads(raw)["settings"]
    except (ValueError, KeyError, TypeError):
        raise NotAStudioImage("The Brand Studio settings in that PNG are damaged.") from None
    return {k: settings[k] for k in FORM_FIELDS if k in settings}
