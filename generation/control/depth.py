"""A sketch's depth, for a depth ControlNet. A depth model installed on the workers (a
transformers depth-estimation folder, e.g. Depth Anything V2 Small, registered as a "depth
estimator" add-on) estimates it there, at the size the model draws, as ComfyUI's depth
preprocessor does. The web process never imports torch: it checks the folder's files when an
admin saves the add-on, and the form's preview of the depth map is estimated by a worker
(`store_preview`, a task), then served from storage.
"""

from __future__ import annotations

from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from ..json_files import read_config
from ..models import AddOn, AddOnKind, InputImage
from .sketch import fit_on_paper


def depth_estimator() -> AddOn | None:
    """The enabled depth estimator the studio estimates depth with (the first by name), or None."""
    return AddOn.objects.filter(kind=AddOnKind.DEPTH_ESTIMATOR, enabled=True).order_by("name").first()


def estimator_problems(addon: AddOn) -> list[str]:
    """What is wrong with a depth estimator's folder (empty: it can be saved), from its files alone."""
    from .addons import broken_weights

    if addon.family:
        return ["A depth estimator serves every family: leave the family blank."]
    folder = addon.resolved_local_path
    try:
        config = read_config(folder / "config.json")
    except (OSError, ValueError):
        return [f"No readable config.json in {addon.local_path!r}: a depth estimator is a transformers folder."]
    architectures = config.get("architectures") or []
    if not isinstance(architectures, list) or not any(str(a).endswith("ForDepthEstimation") for a in architectures):
        found = ", ".join(map(str, architectures)) if isinstance(architectures, list) else "none"
        return [f"That folder holds {found or 'no architecture'}, not a depth-estimation model (…ForDepthEstimation)."]
    if not (folder / "preprocessor_config.json").is_file():
        return [f"No preprocessor_config.json in {addon.local_path!r}: the estimator needs its image processor."]
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        return [f"No .safetensors weights in {addon.local_path!r}."]
    return [broken] if (broken := broken_weights(weights)) else []


def estimator_record(addon: AddOn) -> dict[str, Any]:
    """What a job records of the depth estimator it is steered with."""
    return {
        "key": addon.key,
        "name": addon.name,
        "path": addon.local_path,
        "license": addon.license_name,
        "commercial_use": addon.commercial_use,
    }


# --- the form's preview, estimated by a worker


def preview_name(stored: InputImage, estimator: AddOn, side: int) -> str:
    """Where the preview of `stored`'s depth by `estimator` is kept, beside the input."""
    return f"{stored.file.name}.depth-{estimator.key}-{side}.png"


def store_preview(input_id: str, side: int) -> str:
    """Estimate the input's depth at the form's preview size and store it (a task on a worker);
    returns its storage name, or "" when no estimator is enabled any more."""
    from django.conf import settings

    # torch and the depth model: this runs in a worker's task only
    from ..engine.depth import depth_map
    from ..engine.devices import resolve_device

    estimator = depth_estimator()
    if estimator is None:
        return ""
    stored = InputImage.objects.get(pk=input_id)
    name = preview_name(stored, estimator, side)
    try:
        if default_storage.exists(name):
            return name
        with stored.file.open("rb") as fh:
            picture = Image.open(fh)
            picture.load()
        device = resolve_device(settings.STUDIO_DEVICE)
        depth = depth_map(fit_on_paper(picture, (side, side)), estimator.resolved_local_path, device)
        return default_storage.save(name, ContentFile(_png(depth)))
    finally:  # stored or failed, it is no longer on the way: the user's next preview may go
        InputImage.objects.filter(pk=stored.pk).update(depth_asked_at=None)


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
