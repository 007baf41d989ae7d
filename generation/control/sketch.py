"""A sketch or layout to start from. As drawn or filled, the model starts from it (img2img on
the family's own pipeline, from_pipe on the loaded weights) at a strength the designer picks;
by its canny edges, as a tile or by its depth (estimated on the worker, generation/control/depth.py),
a ControlNet add-on steers every step from noise instead.
Models without the pipeline or the add-on cannot take one, and say so, naming those that can.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image, ImageOps

from ..engine.edges import canny_edges

if TYPE_CHECKING:  # the benchmark scripts use FOLLOW and fit_on_paper without Django
    from ..models import ImageModel, InputImage

# How much of the sketch a job keeps: the share of the steps redrawn (img2img strength). On
# the demo model a hand-drawn outline is kept best at 0.6 (scripts/sketch_report.py; docs/benchmarks.md).
FOLLOW = {"close": 0.6, "loose": 0.8}
FOLLOW_LABELS = {"close": "Follow it closely", "loose": "Use it loosely"}
# What the model starts from: the drawing as it is, or with its closed outlines filled, which a
# model that draws solid shapes follows better (scripts/sketch_report.py measures it on the demo model).
MODES = {
    "drawing": "As drawn",
    "filled": "Fill its closed outlines (a line drawing of solid shapes)",
    "canny": "Its edges (canny, through a ControlNet)",
    "tile": "Its layout and colours (tile, through a ControlNet)",
    "depth": "Its depth (estimated, through a ControlNet)",
}
CONTROL_MODES = ("canny", "tile", "depth")  # the ones a ControlNet add-on follows; the others are img2img
# What the engine makes of the sketch at the size the model draws, for these modes.
DERIVED = ("canny", "depth")
# A ControlNet's conditioning scale for each "how closely".
CONTROL_SCALE = {"close": 1.0, "loose": 0.6}
FILL = (60, 60, 60)  # dark and neutral: the description's colour replaces it


def sketch_problem(model: ImageModel | None, mode: str = "drawing") -> str:
    """Why `model` cannot take a sketch in `mode` ("" when it can), naming the models that can."""
    from ..models import ImageModel
    from .addons import control_addon
    from .depth import depth_estimator

    if model is None:
        return ""
    if mode == "depth" and depth_estimator() is None:
        return f"{model.name} cannot follow a sketch's depth: no depth estimator is installed (Admin › Add-ons)."
    if mode in CONTROL_MODES:
        if control_addon(model, mode) is not None:
            return ""
        able = [m.name for m in ImageModel.objects.filter(enabled=True, for_testing=False) if control_addon(m, mode)]
        names = ", ".join(able) or f"none: no {mode} ControlNet is registered (Admin › Add-ons)"
        return f"{model.name} cannot follow a sketch's {mode} (no ControlNet for it); models that can: {names}."
    if model.supports_img2img:
        return ""
    able_models = ImageModel.objects.filter(enabled=True, supports_img2img=True, for_testing=False)
    names = ", ".join(able_models.order_by("position", "name").values_list("name", flat=True)) or "none is installed"
    return f"{model.name} cannot start from a sketch (it has no image-to-image pipeline); models that can: {names}."


def sketch_params(
    sketch: InputImage, follow: str, mode: str = "drawing", model: ImageModel | None = None
) -> dict[str, object]:
    """What a job records of its sketch (`params`): img2img modes start from `init_image`
    prepared by `mode`; control modes name the ControlNet add-on and its scale."""
    from .addons import control_addon
    from .depth import depth_estimator, estimator_record

    record = {"input": str(sketch.pk), "sha256": sketch.sha256, "name": sketch.name, "follow": follow, "mode": mode}
    record["file"] = str(sketch.file.name)
    if mode not in CONTROL_MODES:
        return {"sketch": record, "init_image": sketch.file.name, "strength": FOLLOW[follow]}
    addon = control_addon(model, mode)
    assert addon is not None, "sketch_problem() first"
    control = {"key": addon.key, "name": addon.name, "path": addon.local_path, "scale": CONTROL_SCALE[follow]}
    control |= {"type": mode, "commercial_use": addon.commercial_use}
    if mode == "depth" and (estimator := depth_estimator()) is not None:
        control["depth"] = estimator_record(estimator)
        if not estimator.commercial_use:  # its depth maps steer every output
            control |= {"commercial_use": False, "license_notice": estimator.license_notice or _not_for(estimator.name)}
    if not addon.commercial_use:
        control["license_notice"] = addon.license_notice or _not_for(addon.name)
    return {"sketch": record, "control": control}


def _not_for(name: str) -> str:
    return f"Made with {name}, whose license does not allow production use."


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
    to the render size. In "depth" mode, the sketch on paper: its depth needs a depth model, which
    only a worker runs (depth.py)."""
    if mode == "canny":
        return canny_edges(fit_on_paper(image, size))
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
