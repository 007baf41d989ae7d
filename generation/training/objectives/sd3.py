"""Stable Diffusion 3.5: a rectified-flow MMDiT on three text encoders."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from diffusers import StableDiffusion3Pipeline

from ..flow import sample_sigmas
from .base import Conditioning, Objective


class SD3Objective(Objective):
    family = "sd3"
    pipeline_class = StableDiffusion3Pipeline

    @torch.no_grad()
    def embed(self, texts: list[str]) -> Conditioning:
        hidden, _, pooled, _ = self.pipe.encode_prompt(
            prompt=texts,
            prompt_2=None,
            prompt_3=None,
            device=self.device,
            do_classifier_free_guidance=False,
            max_sequence_length=self.max_sequence_length,
        )
        return Conditioning(hidden, pooled)

    def loss(self, latents: torch.Tensor, cond: Conditioning, rows: torch.Tensor, generator: torch.Generator) -> Any:
        n = latents.shape[0]
        noise = torch.randn(latents.shape, generator=generator).to(latents)
        sigmas = sample_sigmas(n, shift=float(self.pipe.scheduler.config.get("shift", 3.0)), generator=generator).to(
            latents
        )
        s = sigmas.view(n, 1, 1, 1)
        prediction = self.model(
            hidden_states=(1 - s) * latents + s * noise,
            timestep=sigmas * 1000,  # the SD3 pipeline passes the scheduler's timesteps (sigma x 1000)
            encoder_hidden_states=cond.hidden[rows],
            pooled_projections=cond.pooled[rows],
            return_dict=False,
        )[0]
        return F.mse_loss(prediction.float(), (noise - latents).float())
