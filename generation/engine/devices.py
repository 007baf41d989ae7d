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
