"""A sketch or layout to start from: the model draws the description from the sketch's shapes
and placement (img2img on the family's own pipeline, from_pipe on the loaded weights), at a
strength the designer picks. Models without an img2img pipeline cannot take one, and say so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image, ImageOps

if TYPE_CHECKING:  # the benchmark scripts use FOLLOW and fit_on_paper without Django
    from ..models import ImageModel, InputImage

# How much of the sketch a job keeps: the share of the steps redrawn (img2img strength). On
# the demo model a hand-drawn star's outline is kept best at 0.6 (scripts/sketch_report.py).
FOLLOW = {"close": 0.6, "loose": 0.8}
FOLLOW_LABELS = {"close": "Follow it closely", "loose": "Use it loosely"}
# What the model starts from: the drawing as it is, or with its closed outlines filled, which a
# model that draws solid shapes follows better (the demo model: IoU 0.59 -> 0.69 with a star).
MODES = {"drawing": "As drawn", "filled": "Fill its closed outlines (a line drawing of solid shapes)"}
FILL = (60, 60, 60)  # dark and neutral: the description's colour replaces it


def sketch_problem(model: ImageModel | None) -> str:
    """Why `model` cannot start from a sketch ("" when it can), naming the models that can."""
    from ..models import ImageModel

    if model is None or model.supports_img2img:
        return ""
    able = ImageModel.objects.filter(enabled=True, supports_img2img=True, for_testing=False)
    names = ", ".join(able.order_by("position", "name").values_list("name", flat=True)) or "none is installed"
    return f"{model.name} cannot start from a sketch (it has no image-to-image pipeline); models that can: {names}."


def sketch_params(sketch: InputImage, follow: str, mode: str = "drawing") -> dict[str, object]:
    """What a job records of its sketch (`params`): the worker starts from `init_image`
    prepared by `mode`."""
    record = {"input": str(sketch.pk), "sha256": sketch.sha256, "name": sketch.name, "follow": follow, "mode": mode}
    return {
        "sketch": record,
        "init_image": sketch.file.name,
        "strength": FOLLOW[follow],
    }


def fit_on_paper(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The sketch at the render size, its shape kept: scaled to fit and centred on white paper,
    never stretched (a landscape sketch on a square icon keeps its proportions)."""
    image = image.convert("RGB")
    if image.size == size:
        return image
    fitted = ImageOps.contain(image, size, Image.Resampling.LANCZOS)
    paper = Image.new("RGB", size, (255, 255, 255))
    paper.paste(fitted, ((size[0] - fitted.width) // 2, (size[1] - fitted.height) // 2))
    return paper


def prepare(image: Image.Image, mode: str, size: tuple[int, int]) -> Image.Image:
    """The image the model starts from (and the form previews): in "filled" mode with its closed
    outlines filled (OpenCV's outer contours of the dark strokes, found at the drawing's own
    resolution, where a pen line is still a line, with gaps of about 1 % closed), then fitted
    to the render size."""
    if mode != "filled":
        return fit_on_paper(image, size)
    import cv2
    import numpy as np

    pixels = np.asarray(image.convert("RGB")).copy()
    ink = (np.asarray(image.convert("L")) < 128).astype(np.uint8)
    gap = max(3, round(min(ink.shape) / 100)) | 1
    closed = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones((gap, gap), np.uint8))
    contours, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    inside = np.zeros_like(ink)
    cv2.drawContours(inside, contours, -1, 1, thickness=-1)
    pixels[(inside == 1) & (ink == 0)] = FILL  # the strokes keep their own colour
    return fit_on_paper(Image.fromarray(pixels), size)
