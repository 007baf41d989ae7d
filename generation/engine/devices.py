"""Device and dtype choice shared by the adapters."""

from __future__ import annotations

from typing import Any

import torch

from .options import MEMORY_MODES
from .types import EngineError


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineError(f"STUDIO_DEVICE={requested} but this worker sees no CUDA GPU.")
    return device


def default_dtype(device: torch.device) -> torch.dtype:
    # bf16 where the card has it (Ampere and newer), fp16 on T4-class cards, fp32 on CPU
    # where half precision is slow and the tiny models are small anyway.
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def free_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def module_bytes(module: torch.nn.Module) -> int:
    return sum(stored_bytes(t) for t in (*module.parameters(), *module.buffers()))


def stored_bytes(tensor: torch.Tensor) -> int:
    """What a tensor holds in memory: a quantized one (torchao's tensor subclasses) counts its
    inner tensors (int8 data and scales), not the dtype it stands for."""
    if hasattr(tensor, "__tensor_flatten__") and type(tensor) is not torch.nn.Parameter:
        names, _ = tensor.__tensor_flatten__()
        return sum(stored_bytes(getattr(tensor, name)) for name in names)
    data = getattr(tensor, "data", tensor)
    if data is not tensor and hasattr(data, "__tensor_flatten__"):
        return stored_bytes(data)
    return tensor.numel() * tensor.element_size()


def pipeline_bytes(pipe: Any) -> int:
    """Bytes held by every torch module of a diffusers pipeline (weights and buffers)."""
    return sum(module_bytes(c) for c in pipe.components.values() if isinstance(c, torch.nn.Module))


def largest_component_bytes(pipe: Any) -> int:
    return max((module_bytes(c) for c in pipe.components.values() if isinstance(c, torch.nn.Module)), default=0)


def choose_memory_mode(total: int, largest: int, card: int) -> str:
    """The fastest placement that fits a card of `card` bytes.

    Everything on the GPU when the weights take under 85% of the card (the rest is for
    activations); model CPU offload (one component at a time on the GPU) when the largest
    component does; sequential offload (layer by layer: slow, but fits anywhere) otherwise.
    https://huggingface.co/docs/diffusers/optimization/memory
    """
    if total < 0.85 * card:
        return "gpu"
    if largest < 0.85 * card:
        return "model_offload"
    return "sequential_offload"


def place_by_plan(pipe: Any, device: torch.device, plan: dict[str, Any]) -> str:
    """Put each component where the plan says: all resident; the `offload` ones on the card only
    while they run (diffusers' model offload, the resident ones excluded from it); or, where any
    is `sequential`, the whole pipeline streamed layer by layer."""
    placements = {name: choice.get("placement", "gpu") for name, choice in plan.get("components", {}).items()}
    if "sequential" in placements.values():
        pipe.enable_sequential_cpu_offload(device=device)
        return "sequential_offload"
    resident = [name for name, where in placements.items() if where == "gpu"]
    if len(resident) == len(placements):
        pipe.to(device)
        return "gpu"
    pipe._exclude_from_cpu_offload = [*getattr(pipe, "_exclude_from_cpu_offload", []), *resident]
    pipe.enable_model_cpu_offload(device=device)
    return "planned_offload"


def place(pipe: Any, device: torch.device, mode: str) -> str:
    """Put the pipeline where it fits, and return the mode used. On CPU everything stays put."""
    if mode not in MEMORY_MODES:
        raise EngineError(f"Unknown memory mode {mode!r}; use one of {', '.join(MEMORY_MODES)}.")
    if device.type != "cuda" or mode == "cpu":
        return "cpu"
    if mode == "auto":
        card = torch.cuda.get_device_properties(device).total_memory
        mode = choose_memory_mode(pipeline_bytes(pipe), largest_component_bytes(pipe), card)
    if mode == "gpu":
        pipe.to(device)
    elif mode == "model_offload":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_sequential_cpu_offload(device=device)
    return mode
