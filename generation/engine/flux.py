"""FLUX.1 (dev, schnell, and the tiny offline model) through diffusers.FluxPipeline."""

from typing import Any

import torch
from diffusers import FluxImg2ImgPipeline, FluxPipeline

from .base import DiffusersEngine
from .types import GenerationRequest


class FluxEngine(DiffusersEngine):
    family = "flux"
    pipeline_class = FluxPipeline
    img2img_class = FluxImg2ImgPipeline

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        # FLUX.1 is guidance-distilled: `guidance_scale` is an embedding, and a negative prompt
        # only acts with true CFG (two passes a step), so the preset's negative prompt is not sent.
        kwargs: dict[str, Any] = {"guidance_scale": request.guidance_scale}
        if "max_sequence_length" in self.options:  # a model trained on short T5 sequences must run on them
            kwargs["max_sequence_length"] = self.options["max_sequence_length"]
        return kwargs

    def preview_unpack(self, pipe: Any, latents: torch.Tensor, width: int, height: int) -> torch.Tensor:
        # FLUX packs 2x2 latent patches into tokens: (batch, h/2 * w/2, channels * 4).
        return pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor)
