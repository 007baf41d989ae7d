"""FLUX.1: a rectified-flow transformer on packed latents, CLIP pooled and T5 conditioning."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from diffusers import FluxPipeline

from ..flow import flow_loss
from .base import Conditioning, Objective


class FluxObjective(Objective):
    family = "flux"
    default_sequence_length = 512
    pipeline_class = FluxPipeline
    # The feed-forward layers too (the image stream's, and the single blocks' MLP), as diffusers'
    # FLUX LoRA trainer does: a drawing style (an outline instead of a fill) lives there as much as
    # in attention. On the demo model's outline set attention alone drew fewer subjects as outlines
    # than with these (scripts/outline_lora_report.py; its figures are in docs/benchmarks.md).
    lora_targets: ClassVar[list[str]] = [*Objective.lora_targets, "ff.net.0.proj", "ff.net.2", "proj_mlp"]

    @torch.no_grad()
    def embed(self, texts: list[str]) -> Conditioning:
        hidden, pooled, text_ids = self.pipe.encode_prompt(
            prompt=texts, prompt_2=None, device=self.device, max_sequence_length=self.max_sequence_length
        )
        return Conditioning(hidden, pooled, text_ids)

    def loss(self, latents: torch.Tensor, cond: Conditioning, rows: torch.Tensor, generator: torch.Generator) -> Any:
        assert cond.extra is not None
        return flow_loss(self.model, latents, cond.hidden[rows], cond.pooled[rows], cond.extra, generator=generator)
