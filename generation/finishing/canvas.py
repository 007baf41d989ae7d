"""The brand kit's icon canvas: the subject found against the kit's background, centred, and
scaled so that the safe area (a share of each side) stays empty. Worker-only (numpy).

A model draws an icon wherever it likes, often off-centre or touching an edge; an icon set
needs every glyph on the same grid. The subject is every pixel clearly off the background
(ΔE2000 above the kit's tolerance), so anti-aliased edges and faint noise do not widen it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from generation.finishing.colours import colours_of, delta_e, image_words, to_lab, unpack
from generation.finishing.validators import HEX, hex_to_rgb


def subject_box(image: Image.Image, background: str, tolerance: float) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the pixels clearly off the background; None when there are none."""
    codes, _ = image_words(image)
    values, index = colours_of(codes)
    bg = np.array(hex_to_rgb(background), dtype=np.uint8)
    off = delta_e(to_lab(unpack(values)), to_lab(bg)) > tolerance
    mask = off[index].reshape(image.height, image.width)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def centre(
    image: Image.Image, background: str, tolerance: float, safe_area: float
) -> tuple[Image.Image, dict[str, Any]]:
    """The image on a canvas of its own size and the background colour, its subject centred and
    scaled (up or down) to fill the square inside the safe area, proportions kept."""
    if not HEX.fullmatch(background):
        raise ValueError(f"The icon canvas needs the kit's background colour (like #ffffff), not {background!r}.")
    box = subject_box(image, background, tolerance)
    if box is None:
        return image, {"subject": None, "note": "no subject found against the background: left as drawn"}
    width, height = image.size
    inner_w, inner_h = width * (1 - 2 * safe_area), height * (1 - 2 * safe_area)
    subject = image.crop(box)
    scale = min(inner_w / subject.width, inner_h / subject.height)
    size = (max(1, round(subject.width * scale)), max(1, round(subject.height * scale)))
    subject = subject.resize(size, Image.Resampling.LANCZOS)
    mode = "RGBA" if image.mode == "RGBA" else "RGB"
    fill: Any = (*hex_to_rgb(background), 255) if mode == "RGBA" else hex_to_rgb(background)
    canvas = Image.new(mode, image.size, fill)
    canvas.paste(subject.convert(mode), ((width - size[0]) // 2, (height - size[1]) // 2))
    return canvas, {"subject": list(box), "scale": round(scale, 4)}
