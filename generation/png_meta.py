"""Settings embedded in each PNG (a tEXt chunk), so an image dropped back into the studio
brings back everything that made it."""

from __future__ import annotations

import json
from typing import IO, Any

from PIL import Image, PngImagePlugin
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .storable import storable

KEY = "brandstudio"
MAX_UPLOAD = 32 * 2**20
MAX_PIXELS = 4096 * 4096
FORM_FIELDS = (
    *("preset", "model", "prompt", "quality", "variations", "size", "seed"),
    *("sketch_input", "sketch_follow", "sketch_mode", "reference_inputs", "reference_strength"),
)


DAMAGED = "The Brand Studio settings in that PNG are damaged"
TOO_LARGE = "That image is larger than any the studio makes."


class NotAStudioImage(ValueError):
    pass


def png_info(settings: dict[str, Any], details: dict[str, Any]) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text(KEY, json.dumps({"settings": settings, **details}))
    info.add_text("Software", "Brand Studio")
    return info


class StoredSettings(BaseModel):
    """What a studio PNG's settings may hold: the form's fields, each of its own type (strict:
    no coercion), at sizes the studio writes. Keys the form does not take are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")

    preset: str | None = Field(None, max_length=50)
    model: str | None = Field(None, max_length=100)
    prompt: str | None = Field(None, max_length=1000)
    quality: str | None = Field(None, max_length=20)
    variations: int | None = Field(None, ge=1, le=1000)
    size: str | None = Field(None, max_length=20)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    sketch_input: str | None = Field(None, max_length=36)  # the owner's InputImage, found again by id
    sketch_follow: str | None = Field(None, max_length=10)
    sketch_mode: str | None = Field(None, max_length=10)
    reference_inputs: str | None = Field(None, max_length=200)
    reference_strength: float | None = Field(None, ge=0, le=1)

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        if not storable(value):
            raise ValueError("holds characters that cannot be stored")
        return value


def read_settings(upload: IO[bytes], size: int) -> dict[str, Any]:
    """The studio form settings stored in an uploaded PNG, or NotAStudioImage with the reason.

    Checked before anything is decoded: the byte size, the format, and the pixel count; then
    the settings themselves, which anyone can write into a PNG.
    """
    if size > MAX_UPLOAD:
        raise NotAStudioImage(f"That file is {size / 2**20:.0f} MB; studio PNGs are far smaller.")
    try:
        image = Image.open(upload, formats=["PNG"])
    except Image.DecompressionBombError:
        raise NotAStudioImage(TOO_LARGE) from None
    except Exception:
        raise NotAStudioImage("That is not a PNG image.") from None
    if image.width * image.height > MAX_PIXELS:
        raise NotAStudioImage(TOO_LARGE)
    raw = image.info.get(KEY)  # tEXt chunks before the image data are read with the header
    if not raw:
        raise NotAStudioImage("That PNG carries no Brand Studio settings (it was not made here, or was re-saved).")
    return _parse(raw)


def _parse(raw: Any) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except (ValueError, TypeError, RecursionError):
        raise NotAStudioImage(f"{DAMAGED}: they are not readable JSON.") from None
    settings = document.get("settings") if isinstance(document, dict) else None
    if not isinstance(settings, dict):
        raise NotAStudioImage(f"{DAMAGED}: they are not the named settings the studio writes.")
    try:
        stored = StoredSettings.model_validate(settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        raise NotAStudioImage(f"{DAMAGED}: {name} {_reason(first)}.") from None
    return stored.model_dump(exclude_none=True)


def _reason(error: Any) -> str:
    """Pydantic's complaint in this page's words ("Input should be a valid string": "should be text")."""
    ctx = error.get("ctx") or {}
    words = {
        "string_type": "should be text",
        "string_unicode": "holds characters that cannot be stored",
        "string_too_long": f"should be at most {ctx.get('max_length')} characters long",
        "int_type": "should be a whole number",
        "greater_than_equal": f"should be at least {ctx.get('ge')}",
        "less_than_equal": f"should be at most {ctx.get('le')}",
    }
    return words.get(error["type"]) or str(error["msg"]).removeprefix("Value error, ")
