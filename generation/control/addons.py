"""Add-ons a model is steered with (an IP-Adapter for style references, ControlNets for a
sketch's structure): which model can use which, and what is checked when an admin registers
one, before any worker loads it. FLUX.2 klein takes style references without one, through its
pipeline's own image input."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path

from ..engine.families import FAMILIES, controlnet_class, has_ip_adapter, has_native_references
from ..engine.ip_adapters import split_ip_adapter
from ..json_files import read_config
from ..lora_files import read_header
from ..models import AddOn, AddOnKind, ControlType, ImageModel
from ..training.captions.addon import captioner_problems
from .depth import depth_estimator, estimator_problems


def reference_addon(model: ImageModel | None) -> AddOn | None:
    """The IP-Adapter this model takes style references through, or None."""
    if model is None or not has_ip_adapter(model.family):
        return None
    found = AddOn.objects.filter(kind=AddOnKind.IP_ADAPTER, family=model.family, enabled=True).order_by("name")
    # As with ControlNets: one family, several sizes of model (the demo model is a small FLUX).
    return next((addon for addon in found if not _fits(model, _ip_shapes(addon))), None)


def takes_references(model: ImageModel | None) -> bool:
    """Whether this model takes style references: through its own pipeline, or an IP-Adapter."""
    return model is not None and (has_native_references(model.family) or reference_addon(model) is not None)


def control_addon(model: ImageModel | None, control_type: str) -> AddOn | None:
    """The ControlNet this model follows a sketch's `control_type` (canny, tile, depth) through,
    or None. Depth needs a depth estimator too: the ControlNet follows the sketch's depth map."""
    if model is None or not controlnet_class(model.family):
        return None
    if control_type == ControlType.DEPTH and depth_estimator() is None:
        return None
    found = AddOn.objects.filter(
        kind=AddOnKind.CONTROLNET, family=model.family, control_type=control_type, enabled=True
    )
    # One family, several sizes of model (the demo model is a small FLUX): only the ones it fits.
    return next((addon for addon in found.order_by("name") if not _controlnet_misfit(addon, model)), None)


def control_types() -> list[str]:
    """The control types some enabled ControlNet add-on offers (the sketch box lists them)."""
    found = AddOn.objects.filter(kind=AddOnKind.CONTROLNET, enabled=True).exclude(control_type="")
    types = set(found.values_list("control_type", flat=True))
    if ControlType.DEPTH in types and depth_estimator() is None:
        types.discard(ControlType.DEPTH)  # a depth ControlNet follows a depth map nobody here can make
    return sorted(types)


def capabilities(model: ImageModel) -> list[str]:
    """What a designer can steer this model with, derived from its family and its add-ons."""
    offered = [("sketch", model.supports_img2img), ("inpaint", model.supports_inpaint), ("edit", model.supports_edit)]
    offered.append(("references", takes_references(model)))
    offered += [(f"control:{kind}", control_addon(model, kind) is not None) for kind in control_types()]
    return [name for name, able in offered if able]


def any_takes_references(models: Iterable[ImageModel]) -> bool:
    """Whether any of these models takes style references: one query, whatever their number
    (the studio form and the image page ask on every view)."""
    families = _reference_families()
    return any(model.family in families for model in models)


def _reference_families() -> set[str]:
    """The families whose models take style references here (their own input, or an add-on)."""
    found = AddOn.objects.filter(kind=AddOnKind.IP_ADAPTER, enabled=True).values_list("family", flat=True)
    return {f for f in found if has_ip_adapter(f)} | {f for f in FAMILIES if has_native_references(f)}


def reference_problem(model: ImageModel | None) -> str:
    """Why `model` cannot take style references ("" when it can), naming the models that can."""
    if model is None or takes_references(model):
        return ""
    candidates = ImageModel.objects.filter(enabled=True, for_testing=False, family__in=_reference_families())
    able = [m.name for m in candidates.order_by("position", "name") if takes_references(m)]  # the sizes it fits
    names = ", ".join(able) or "none: no IP-Adapter is registered (Admin › Add-ons)"
    return f"{model.name} cannot take style references (no IP-Adapter that fits it); models that can: {names}."


def addon_problems(addon: AddOn) -> list[str]:
    """What is wrong with an add-on's files for its family (empty: it can be saved)."""
    if addon.kind == AddOnKind.DEPTH_ESTIMATOR:
        return estimator_problems(addon)
    if addon.kind == AddOnKind.CAPTIONER:
        return captioner_problems(addon)
    if not addon.family:
        return [f"Choose the model family this {addon.get_kind_display()} is for."]
    if addon.kind == AddOnKind.CONTROLNET:
        return _controlnet_problems(addon)
    if not has_ip_adapter(addon.family):
        able = ", ".join(str(info["label"]) for info in FAMILIES.values() if info.get("ip_adapter"))
        return [f"The {addon.get_family_display()} engine takes no IP-Adapter here ({able} do)."]
    folder = addon.resolved_local_path
    weights = folder / addon.weight_name
    if not weights.is_file():
        return [f"No {addon.weight_name} in the folder {addon.local_path!r} on this machine."]
    if not (folder / "image_encoder" / "config.json").is_file():
        return [f"No image_encoder/config.json in {addon.local_path!r}: an IP-Adapter needs its CLIP image encoder."]
    try:
        header = read_header(weights)
    except ValueError as exc:
        return [f"{addon.weight_name}: {exc}"]
    shapes = _shapes(header)
    if not shapes["image_proj"] or not shapes["ip_adapter"]:
        return [
            f"{addon.weight_name} holds no image_proj.* and ip_adapter.* tensors (nor XLabs' ip_adapter_proj_model.* "
            "and double_blocks.*): it is not an IP-Adapter."
        ]
    return _unless_one_fits(addon, lambda model: _fits(model, shapes))


def _shapes(header: dict) -> dict[str, dict[str, list[int]]]:
    """The IP-Adapter's tensor shapes by the names diffusers' loader gives them."""
    return split_ip_adapter({k: v["shape"] for k, v in header.items() if k != "__metadata__"})


@functools.lru_cache(maxsize=64)
def _header_shapes(path: Path, mtime: float) -> dict[str, dict[str, list[int]]]:
    return _shapes(read_header(path))


def _ip_shapes(addon: AddOn) -> dict[str, dict[str, list[int]]]:
    """The add-on's tensor shapes from its header only (read once per file version; the whole
    file is checked when it is saved). Empty when it is not on this machine."""
    path = addon.resolved_local_path / addon.weight_name
    try:
        return _header_shapes(path, path.stat().st_mtime)
    except (OSError, ValueError):
        return {"image_proj": {}, "ip_adapter": {}}


def broken_weights(files: Iterable[Path]) -> str:
    """The first safetensors file that is cut short or unreadable, with why ("" when all are whole).
    Checked by its header and its size on disk alone: a 2 GB ControlNet is never read into memory."""
    for file in files:
        try:
            read_header(file)
        except ValueError as exc:
            return f"{file.name}: {exc}"
    return ""


def _unless_one_fits(addon: AddOn, misfit: Callable[[ImageModel], str]) -> list[str]:
    """Nothing when the add-on fits one installed model of its family (it is offered to those
    alone: a family comes in several sizes, the demo model and a full FLUX.1), else why each
    refuses it."""
    # Models whose weights are not on this machine are checked when they are (the worker's load).
    problems = [misfit(model) for model in _installed(addon.family) if model.resolved_local_path.is_dir()]
    return [] if not problems or not all(problems) else problems


def _installed(family: str) -> list[ImageModel]:
    return [m for m in ImageModel.objects.filter(family=family, enabled=True) if m.local_path]


def _fits(model: ImageModel, shapes: dict[str, dict[str, list[int]]]) -> str:
    """Why the IP-Adapter does not fit this model's denoiser ("" when it does, or when either is
    not on this machine: the worker's load says so then)."""
    part = "transformer" if model.family == "flux" else "unet"
    try:
        config = read_config(model.resolved_local_path / part / "config.json")
    except (OSError, ValueError):
        return ""
    width = shapes["image_proj"].get("norm.weight", [None])[0]
    if part == "unet":
        cross = config.get("cross_attention_dim")
        if width is not None and cross != width:
            return f"It projects images to width {width}; {model.name}'s UNet attends to width {cross}."
        return ""
    text, inner = (
        config.get("joint_attention_dim"),
        config.get("num_attention_heads", 0) * config.get("attention_head_dim", 0),
    )
    if width is not None and width != text:
        return f"It projects images to width {width}; {model.name}'s transformer reads text of width {text}."
    blocks = {key.split(".")[0] for key in shapes["ip_adapter"]}
    if len(blocks) != config.get("num_layers"):
        return f"It has layers for {len(blocks)} double blocks; {model.name} has {config.get('num_layers')}."
    key_shape = shapes["ip_adapter"].get("0.to_k_ip.weight")
    if key_shape and key_shape != [inner, text]:
        return f"Its image keys are {key_shape[0]} wide; {model.name}'s attention is {inner} wide."
    return ""


# A ControlNet's config names what must agree with the base model's own config.
_MATCHING: dict[str, tuple[str, tuple[str, ...]]] = {
    "ControlNetModel": ("unet", ("cross_attention_dim",)),
    "FluxControlNetModel": ("transformer", ("joint_attention_dim", "num_attention_heads", "attention_head_dim")),
    "QwenImageControlNetModel": ("transformer", ("joint_attention_dim", "num_attention_heads", "attention_head_dim")),
    "ZImageControlNetModel": ("transformer", ("dim", "n_heads", "n_kv_heads")),
}


def _controlnet_problems(addon: AddOn) -> list[str]:
    expected = controlnet_class(addon.family)
    if not expected:
        able = ", ".join(str(info["label"]) for info in FAMILIES.values() if info.get("controlnet"))
        return [f"The {addon.get_family_display()} engine takes no ControlNet here ({able} do)."]
    if not addon.control_type:
        return ["Say what the ControlNet was trained on (its control type)."]
    folder = addon.resolved_local_path
    try:
        config = read_config(folder / "config.json")
    except (OSError, ValueError):
        return [f"No readable config.json in {addon.local_path!r}: a ControlNet is a diffusers folder."]
    if config.get("_class_name") != expected:
        return [f"That folder holds a {config.get('_class_name')}; {addon.get_family_display()} takes a {expected}."]
    weights = list(folder.glob("diffusion_pytorch_model*.safetensors"))
    if not weights:
        return [f"No diffusion_pytorch_model.safetensors in {addon.local_path!r}."]
    if broken := broken_weights(weights):
        return [broken]
    return _unless_one_fits(addon, lambda model: _controlnet_misfit(addon, model))


def _controlnet_misfit(addon: AddOn, model: ImageModel) -> str:
    """Why the ControlNet does not fit this model's denoiser ("" when it does, or when either
    config is not on this machine: the worker's load says so then)."""
    part, keys = _MATCHING.get(controlnet_class(addon.family), ("", ()))
    try:
        config = read_config(addon.resolved_local_path / "config.json")
        base = read_config(model.resolved_local_path / part / "config.json")
    except (OSError, ValueError):
        return ""
    for key in keys:
        if base.get(key) != config.get(key):
            return f"Its {key} is {config.get(key)}; {model.name}'s is {base.get(key)}."
    return ""
