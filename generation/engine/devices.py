"""Device and dtype choice shared by the adapters."""

from __future__ import annotations

from typing import Any

import torch


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        from .types import EngineError

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


def pipeline_bytes(pipe: Any) -> int:
    """Bytes held by every torch module of a diffusers pipeline (weights and buffers)."""
    total = 0
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            total += sum(t.numel() * t.element_size() for t in component.parameters())
            total += sum(t.numel() * t.element_size() for t in component.buffers())
    return total


MEMORY_MODES = ("auto", "gpu", "model_offload", "sequential_offload", "cpu")


def place(pipe: Any, device: torch.device, mode: str) -> str:
    """Put the pipeline where it fits, and return the mode used.

    auto: the whole pipeline on the GPU when its weights take under 85% of the card, model CPU
    offload (one component at a time on the GPU) under 2.5x, sequential offload (layer by layer,
    slow but fits anywhere) beyond. On CPU everything stays where it is.
    https://huggingface.co/docs/diffusers/optimization/memory
    """
    if mode not in MEMORY_MODES:
        from .types import EngineError

        raise EngineError(f"Unknown memory mode {mode!r}; use one of {', '.join(MEMORY_MODES)}.")
    if device.type != "cuda" or mode == "cpu":
        return "cpu"
    if mode == "auto":
        total = torch.cuda.get_device_properties(device).total_memory
        size = pipeline_bytes(pipe)
        mode = "gpu" if size < 0.85 * total else "model_offload" if size < 2.5 * total else "sequential_offload"
    if mode == "gpu":
        pipe.to(device)
    elif mode == "model_offload":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_sequential_cpu_offload(device=device)
    return mode
