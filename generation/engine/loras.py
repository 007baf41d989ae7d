"""LoRA files in the layout a pipeline loads, converted by the loaded model's own widths.

diffusers converts most foreign formats itself when given the file. FLUX files in BFL's
module names (kohya, ai-toolkit) are converted here instead: diffusers' kohya converter
splits the single blocks' fused projection at FLUX.1's widths (3072 x 3 + 12288), an empty
AssertionError on any other FLUX, and it loads nothing from ai-toolkit's BFL names without
saying so. The plan is the one the admin's save check used (`generation.lora_layout`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..lora_files import Header
from ..lora_layout import COMPONENTS, ModelLayout, check_fits


def pipeline_layout(pipe: Any) -> ModelLayout:
    """Weight shapes of a loaded pipeline, as its files would give them (without peft's LoRA layers)."""
    shapes: dict[str, dict[str, list[int]]] = {}
    for component in COMPONENTS:
        module = getattr(pipe, component, None)
        if isinstance(module, torch.nn.Module):
            shapes[component] = {
                key.replace(".base_layer.", "."): list(value.shape)
                for key, value in module.state_dict().items()
                if ".lora_" not in key
            }
    denoiser = "unet" if getattr(pipe, "unet", None) is not None else "transformer"
    return ModelLayout(name="this model", denoiser=denoiser, shapes=shapes)


def converted_state_dict(path: Path, fmt: str, pipe: Any) -> dict[str, torch.Tensor]:
    """A FLUX LoRA in BFL names as diffusers keys (`transformer.<module>.lora_A.weight`), with
    kohya's alpha / rank scale folded into lora_B (diffusers does the same)."""
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    layout = pipeline_layout(pipe)
    header: Header = {key: {"shape": list(value.shape)} for key, value in tensors.items()}
    converted: dict[str, torch.Tensor] = {}
    for layer in check_fits(header, fmt, layout):
        down, up = tensors[layer.down], tensors[layer.up]
        scale = float(tensors[layer.alpha]) / down.shape[0] if layer.alpha else 1.0
        rows = [layout.weight(target)[0] for target in layer.targets]  # type: ignore[index]
        for target, piece in zip(layer.targets, up.split(rows), strict=True):
            if layer.swap_halves:
                piece = torch.cat(piece.chunk(2)[::-1])
            converted[f"{target}.lora_A.weight"] = down
            converted[f"{target}.lora_B.weight"] = (piece * scale).contiguous()
    return converted
