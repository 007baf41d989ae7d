"""LoRA files in the layout a pipeline loads, converted by the loaded model's own widths.

diffusers converts most foreign formats itself when given the file. These are converted here
instead, with the plan the admin's save check used (`generation.lora_layout`):

- FLUX.1 files in BFL's module names (kohya, ai-toolkit): diffusers' kohya converter splits the
  single blocks' fused projection at FLUX.1's widths (3072 x 3 + 12288), an empty AssertionError
  on any other FLUX, and it loads nothing from ai-toolkit's BFL names without saying so.
- FLUX.2 files in BFL's names (kohya / musubi-tuner, ai-toolkit): diffusers' kohya FLUX.2
  converter drops the layers it has no entry for (the shared modulations, the guidance
  embedder, the final adaLN) with a log line only, and neither of its converters swaps the final
  adaLN's (shift, scale) halves into diffusers' (scale, shift) as its checkpoint converter does.
- HiDream files with kohya-style tensors (alpha, lora_down / lora_up): diffusers' HiDream loader
  only strips `diffusion_model.`, then refuses `.alpha` tensors ("Invalid LoRA checkpoint") and
  fails on lora_down names with an IndexError.

Z-Image and Qwen-Image files from musubi-tuner and ai-toolkit name diffusers' modules and
diffusers converts them correctly (alpha included): they go to it as files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..lora_files import Header, LoraError, detect, read_header
from ..lora_layout import COMPONENTS, ModelLayout, check_fits

# The formats the studio converts, by family (FLUX.1's engine converts its own: engine/flux.py);
# every other file goes to diffusers as it is.
STUDIO_CONVERTS = {"flux2": ("kohya", "ai-toolkit"), "flux2dev": ("kohya", "ai-toolkit")}
KOHYA_TENSORS = (".alpha", ".lora_down.weight", ".lora.down.weight")


def pipeline_layout(pipe: Any) -> ModelLayout:
    """Weight shapes of a loaded pipeline, as its files would give them (without peft's LoRA layers)."""
    shapes: dict[str, dict[str, list[int]]] = {}
    for component in COMPONENTS:
        module = getattr(pipe, component, None)
        if isinstance(module, torch.nn.Module):
            shapes[component] = _weight_shapes(module)
    denoiser = "unet" if getattr(pipe, "unet", None) is not None else "transformer"
    # The class picks FLUX.1's or FLUX.2's table for BFL's names, as config.json's `_class_name` does.
    config: dict[str, object] = {"_class_name": type(getattr(pipe, denoiser, None)).__name__}
    return ModelLayout(name="this model", denoiser=denoiser, shapes=shapes, config=config)


def _weight_shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    shapes = {
        key.replace(".base_layer.", "."): list(value.shape)
        for key, value in module.state_dict().items()
        if ".lora_" not in key
    }
    # A quantized linear stores packed weights (GGUF's blocks of bytes, bitsandbytes' 4-bit pairs):
    # its features are the widths a LoRA is made for.
    for name, layer in module.named_modules():
        features = getattr(layer, "out_features", None), getattr(layer, "in_features", None)
        if name and ".lora_" not in name and hasattr(layer, "weight") and all(isinstance(n, int) for n in features):
            shapes[name.replace(".base_layer", "") + ".weight"] = list(features)
    return shapes


def weights_for(family: str, path: Path, pipe: Any) -> str | dict[str, torch.Tensor]:
    """What `load_lora_weights` gets for a file: the studio's conversion where diffusers' would
    go wrong (see above), else the file itself."""
    if family not in STUDIO_CONVERTS and family != "hidream":
        return str(path)
    header = read_header(path)
    _, fmt = detect(list(header))
    kohya_tensors = any(key.endswith(KOHYA_TENSORS) for key in header)
    if fmt in STUDIO_CONVERTS.get(family, ()) or (family == "hidream" and kohya_tensors):
        return converted_state_dict(path, fmt, pipe)
    return str(path)


def converted_state_dict(path: Path, fmt: str, pipe: Any) -> dict[str, torch.Tensor]:
    """A LoRA as diffusers keys (`transformer.<module>.lora_A.weight`), fused layers split by the
    model's widths, with kohya's alpha / rank scale folded into lora_B (diffusers does the same)."""
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    layout = pipeline_layout(pipe)
    header: Header = {key: {"shape": list(value.shape)} for key, value in tensors.items()}
    converted: dict[str, torch.Tensor] = {}
    layers = check_fits(header, fmt, layout)
    placed = {key for layer in layers for key in (layer.down, layer.up, layer.alpha) if key}
    if left := sorted(set(tensors) - placed):  # diffusers-format extras (DoRA magnitudes) would be lost here
        raise LoraError(f"The LoRA has tensors the engine cannot place in this model: {', '.join(left[:3])}.")
    for layer in layers:
        down, up = tensors[layer.down], tensors[layer.up]
        scale = float(tensors[layer.alpha]) / down.shape[0] if layer.alpha else 1.0
        rows = [layout.weight(target)[0] for target in layer.targets]  # type: ignore[index]
        for target, piece in zip(layer.targets, up.split(rows), strict=True):
            if layer.swap_halves:
                piece = torch.cat(piece.chunk(2)[::-1])
            converted[f"{target}.lora_A.weight"] = down
            converted[f"{target}.lora_B.weight"] = (piece * scale).contiguous()
    return converted
