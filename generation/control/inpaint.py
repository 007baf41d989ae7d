"""Inpaint: repaint the part of a studio image a designer paints over, keep the rest.

The mask is the designer's (the image page's canvas, or a file): white, or opaque where a
canvas drew, is what changes. It is stored like a sketch (private, once per content) as a
black-and-white PNG, checked against the image, and the job runs the family's inpaint
pipeline (from_pipe on the loaded weights) over the image as the model drew it.
"""

from __future__ import annotations

from typing import IO, Any

from PIL import Image

from ..models import GeneratedImage, ImageModel, InputImage
from ..uploads import UploadError, read_image
from .inputs import MAX_BYTES, MAX_PIXELS, store_image

ASPECT_TOLERANCE = 0.01  # a mask drawn over the image, a pixel off after scaling, is the same shape


def store_mask(owner: Any, upload: IO[bytes], name: str = "mask.png") -> InputImage:
    """An uploaded mask as the owner's InputImage: "L", 255 where the image should change."""
    image, _ = read_image(upload.read(MAX_BYTES + 1), max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
    return store_image(owner, mask_of(image), name, flatten=False)


def mask_of(image: Image.Image) -> Image.Image:
    """Where a mask paints: its alpha where it has one (a canvas's strokes on transparency),
    else its light pixels (white on black, as ComfyUI and InvokeAI export them)."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    channel = image.convert("RGBA").getchannel("A") if has_alpha else image.convert("L")
    return channel.point(lambda value: 255 if value > 127 else 0).convert("L")


def mask_note(mask: InputImage, image: GeneratedImage, render: tuple[int, int]) -> str:
    """What to tell the designer about the mask against this image ("" when it fits as it is),
    or UploadError when it cannot be used: another shape, nothing painted, everything painted."""
    if abs(mask.width / mask.height - image.width / image.height) > ASPECT_TOLERANCE * image.width / image.height:
        raise UploadError(
            f"The mask is {mask.width}×{mask.height} and the image {image.width}×{image.height}: "
            "paint it over the image, or give it the image's proportions."
        )
    with mask.file.open("rb") as fh:
        painted = Image.open(fh).convert("L").resize(render, Image.Resampling.NEAREST)
    share = sum(painted.point(lambda value: 1 if value > 127 else 0).getdata()) / (render[0] * render[1])
    if share == 0:
        raise UploadError("The mask paints nothing at the size the model draws: paint over what should change.")
    if share == 1:
        raise UploadError("The mask covers the whole image: generate a new one instead, or leave part of it unpainted.")
    if (mask.width, mask.height) != (image.width, image.height):
        return f"The mask ({mask.width}×{mask.height}) was scaled to the image ({image.width}×{image.height})."
    return ""


def inpaint_problem(model: ImageModel | None) -> str:
    """Why `model` cannot repaint a mask ("" when it can), naming the models that can."""
    if model is None or model.supports_inpaint:
        return ""
    able = [m.name for m in ImageModel.objects.filter(enabled=True, for_testing=False) if m.supports_inpaint]
    names = ", ".join(able) or "none is installed"
    return f"{model.name} cannot repaint part of an image (it has no inpaint pipeline); models that can: {names}."
