"""Outpaint: extend a studio image's canvas on any side and have the model draw what is there,
through the family's inpaint pipeline over the image placed on the larger canvas, with a mask
over the new part (and a few pixels into the old, so the seam is drawn too)."""

from __future__ import annotations

from PIL import Image, ImageFilter, ImageStat

SIDES = ("left", "right", "top", "bottom")
MAX_SHARE = 100  # % of the image's own side, per side
SEAM = 4  # px of the old image the mask also covers


def extended_size(width: int, height: int, extend: dict[str, int], multiple: int) -> tuple[int, int, dict[str, int]]:
    """The new canvas size (on the model's grid) and each side's extension in pixels."""
    pixels = {side: round((width if side in ("left", "right") else height) * extend[side] / 100) for side in SIDES}
    new_w, new_h = width + pixels["left"] + pixels["right"], height + pixels["top"] + pixels["bottom"]
    grid_w, grid_h = -(-new_w // multiple) * multiple, -(-new_h // multiple) * multiple
    pixels["right"] += grid_w - new_w  # the grid's few pixels go to the far sides
    pixels["bottom"] += grid_h - new_h
    return grid_w, grid_h, pixels


def canvas_and_mask(
    image: Image.Image, size: tuple[int, int], pixels: dict[str, int]
) -> tuple[Image.Image, Image.Image]:
    """The image on the larger canvas (the new part a blur of its own edge colours, which the
    model redraws) and the mask: white over the new part and the seam."""
    image = image.convert("RGB")
    fill = tuple(round(v) for v in ImageStat.Stat(image).median)
    canvas = Image.new("RGB", size, fill)
    stretched = image.resize(size, Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(max(size) / 16))
    canvas = Image.blend(canvas, stretched, 0.5)
    canvas.paste(image, (pixels["left"], pixels["top"]))
    mask = Image.new("L", size, 255)
    inner = (
        pixels["left"] + (SEAM if pixels["left"] else 0),
        pixels["top"] + (SEAM if pixels["top"] else 0),
        pixels["left"] + image.width - (SEAM if pixels["right"] else 0),
        pixels["top"] + image.height - (SEAM if pixels["bottom"] else 0),
    )
    mask.paste(0, inner)
    return canvas, mask
