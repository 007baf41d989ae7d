"""A job's frozen parameters made into the engine's GenerationRequest, its images read through storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from PIL import Image as PILImage
from PIL.Image import Image

from ..control.sketch import DERIVED, prepare
from ..engine import EngineError
from ..engine.types import ControlNetSpec, GenerationRequest, IPAdapterSpec, LoraSpec
from ..models import GenerationJob


def build_request(job: GenerationJob, *, skip: int = 0) -> GenerationRequest:
    p = job.params
    return GenerationRequest(
        **_steering(p),
        strength=p.get("strength", 1.0),
        prompt=p["prompt"],
        negative_prompt=p.get("negative_prompt", ""),
        width=p["width"],
        height=p["height"],
        steps=p["steps"],
        guidance_scale=p["guidance_scale"],
        seeds=p["seeds"][skip:],
        quality=job.quality,
        loras=[LoraSpec(settings.STUDIO_LORA_ROOT / lora["path"], lora["strength"]) for lora in p.get("loras", [])],
    )


def _control_image(p: dict[str, Any]) -> Image:
    """What a ControlNet follows: the sketch on paper at the job's size (the engine finds its
    canny edges at the size the model draws), or the tile."""
    sketch = _init_image(p["sketch"]["file"], sketch=True)
    mode = p["sketch"]["mode"]
    return prepare(sketch, "drawing" if mode in DERIVED else mode, (p["width"], p["height"]))


def _steering(p: dict[str, Any]) -> dict[str, Any]:
    """What the job is steered with beyond its prompt, read through the configured storage:
    the image it starts from, a mask, style references, a ControlNet's image, an edit's source."""
    steering: dict[str, Any] = {}
    if p.get("init_image"):
        steering["init_image"] = _start_image(p)
    if p.get("inpaint"):
        steering["mask_image"] = _mask_image(p["inpaint"])
    if p.get("references"):
        steering["references"] = [_init_image(r["file"], what="style reference") for r in p["references"]]
        if p.get("ip_adapter"):  # else the model's own pipeline takes them (FLUX.2 klein)
            steering["reference_strength"] = p.get("reference_strength", 0.6)
            steering["ip_adapter"] = _ip_adapter(p["ip_adapter"])
    if control := p.get("control"):
        steering |= {"control_image": _control_image(p), "control_scale": control["scale"]}
        steering["control_edges"] = p["sketch"]["mode"] if p["sketch"]["mode"] in ("canny", "depth") else ""
        if depth := control.get("depth"):
            steering["depth_estimator"] = Path(settings.STUDIO_MODELS_DIR) / depth["path"]
        steering["controlnet"] = _controlnet(control)
    if edit := p.get("edit"):
        steering["edit_images"] = [_on_white(_init_image(edit["file"], what="image this edit changes"))]
    return steering


def _on_white(image: Image) -> Image:
    """A cut-out (transparent) image on white, as the edit model sees a page."""
    if image.mode not in ("RGBA", "LA", "PA"):
        return image.convert("RGB")
    paper = PILImage.new("RGBA", image.size, (255, 255, 255, 255))
    return PILImage.alpha_composite(paper, image.convert("RGBA")).convert("RGB")


def _controlnet(record: dict[str, Any]) -> ControlNetSpec:
    return ControlNetSpec(Path(settings.STUDIO_MODELS_DIR) / record["path"])


def _ip_adapter(record: dict[str, Any]) -> IPAdapterSpec:
    return IPAdapterSpec(Path(settings.STUDIO_MODELS_DIR) / record["path"], record["weight_name"])


def _mask_image(inpaint: dict[str, Any]) -> Image:
    try:
        with default_storage.open(inpaint["mask_image"], "rb") as fh:
            return PILImage.open(fh).convert("L")
    except (OSError, ValueError) as exc:
        raise EngineError("The mask this job repaints is no longer available.") from exc


def _start_image(p: dict[str, Any]) -> Image:
    """What the job starts from: its sketch fitted to the render size, or the image it varies."""
    if "sketch" not in p:
        return _init_image(p["init_image"])
    sketch = _init_image(p["init_image"], sketch=True)
    return prepare(sketch, p["sketch"].get("mode", "drawing"), (p["width"], p["height"]))


def _init_image(name: str, *, sketch: bool = False, what: str = "") -> Image:
    """The image a job starts from ("More like this", a sketch), read through the configured storage."""
    try:
        with default_storage.open(name, "rb") as fh:
            image = PILImage.open(fh)
            image.load()
    except (OSError, ValueError) as exc:
        what = what or ("sketch this job starts from" if sketch else "image these variations start from")
        raise EngineError(f"The {what} is no longer available.") from exc
    return image
