"""What every family's objective offers the trainer (`generation/training/lora.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..flow import encode_images


@dataclass
class Conditioning:
    """Per-caption text conditioning, computed once (text encoders stay frozen)."""

    hidden: torch.Tensor
    pooled: torch.Tensor
    extra: torch.Tensor | None = None  # FLUX's text ids


class Objective:
    family: ClassVar[str]
    pipeline_class: ClassVar[Any]
    network: ClassVar[str] = "transformer"  # the pipeline component the LoRA goes on
    default_sequence_length: ClassVar[int] = 256
    lora_targets: ClassVar[list[str]] = ["to_k", "to_q", "to_v", "to_out.0"]

    def __init__(self, pipe: Any, *, max_sequence_length: int) -> None:
        self.pipe = pipe
        self.max_sequence_length = max_sequence_length

    @classmethod
    def load(cls, path: Path, options: dict[str, Any], **kwargs: Any) -> Any:
        """The base pipeline from the model's folder; `options` are its registry entry's."""
        return cls.pipeline_class.from_pretrained(path, local_files_only=True, **kwargs)

    @property
    def model(self) -> Any:
        return getattr(self.pipe, self.network)

    @property
    def device(self) -> torch.device:
        """Where the encoders run: the card (one at a time, or with the whole pipeline), or the CPU."""
        return torch.device(self.pipe._execution_device)

    def latents(self, pixels: torch.Tensor) -> torch.Tensor:
        return encode_images(self.pipe.vae, pixels)

    def embed(self, texts: list[str]) -> Conditioning:
        raise NotImplementedError

    def loss(self, latents: torch.Tensor, cond: Conditioning, rows: torch.Tensor, generator: torch.Generator) -> Any:
        raise NotImplementedError

    def save(self, folder: Path, layers: dict[str, Any]) -> None:
        self.pipeline_class.save_lora_weights(str(folder), transformer_lora_layers=layers)

    def sample_kwargs(self) -> dict[str, Any]:
        return {"max_sequence_length": self.max_sequence_length}
