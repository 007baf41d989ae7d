"""FLUX.2 [klein] (4B and 9B) through diffusers.Flux2KleinPipeline."""

from typing import Any

import torch
from diffusers import Flux2KleinPipeline

from .base import DiffusersEngine
from .types import GenerationRequest


class Flux2KleinEngine(DiffusersEngine):
    family = "flux2"
    pipeline_class = Flux2KleinPipeline

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        # The pipeline has no negative prompt; the distilled klein models run at guidance 1.
        return {"guidance_scale": request.guidance_scale}

    def preview_latents(self, pipe: Any, latents: torch.Tensor, width: int, height: int) -> torch.Tensor:
        # Tokens of 2x2-patchified, batch-normalised latents, placed by position ids: the pipeline's
        # own helpers undo each step, as its decode does.
        rows, cols = height // (pipe.vae_scale_factor * 2), width // (pipe.vae_scale_factor * 2)
        ids = pipe._prepare_latent_ids(torch.empty(latents.shape[0], 1, rows, cols)).to(latents.device)
        latents = pipe._unpack_latents_with_ids(latents, ids, rows, cols)
        bn = pipe.vae.bn
        mean = bn.running_mean.view(1, -1, 1, 1).to(latents.device, latents.dtype)
        std = torch.sqrt(bn.running_var.view(1, -1, 1, 1) + pipe.vae.config.batch_norm_eps).to(latents.dtype)
        return pipe._unpatchify_latents(latents * std.to(latents.device) + mean)
