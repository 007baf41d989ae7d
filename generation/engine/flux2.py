"""FLUX.2 [klein] (4B and 9B) through diffusers.Flux2KleinPipeline, and FLUX.2 [dev] through
Flux2Pipeline: the same DiT and latents, dev with a guidance embedding and a Mistral-3 encoder."""

from typing import Any

import torch
from diffusers import Flux2KleinInpaintPipeline, Flux2KleinPipeline, Flux2Pipeline

from .base import DiffusersEngine
from .types import GenerationRequest


class Flux2KleinEngine(DiffusersEngine):
    family = "flux2"
    pipeline_class = Flux2KleinPipeline
    # No img2img twin for "More like this" or sketches; its inpaint pipeline repaints a mask.
    inpaint_class = Flux2KleinInpaintPipeline
    edit_argument = "image"  # klein edits with the image as a reference
    reference_argument = "image"  # and takes style references the same way, after the image it edits

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        # The pipeline has no negative prompt; the distilled klein models run at guidance 1.
        return {"guidance_scale": request.guidance_scale}

    def preview_unpack(self, pipe: Any, latents: torch.Tensor, width: int, height: int) -> torch.Tensor:
        # Tokens placed by position ids, as the pipeline's decode does: (batch, channels * 4, h/2, w/2).
        rows, cols = height // (pipe.vae_scale_factor * 2), width // (pipe.vae_scale_factor * 2)
        ids = pipe._prepare_latent_ids(torch.empty(latents.shape[0], 1, rows, cols)).to(latents.device)
        return pipe._unpack_latents_with_ids(latents, ids, rows, cols)

    def preview_denormalize(self, pipe: Any, latents: torch.Tensor) -> torch.Tensor:
        # Batch-normalised 2x2 patches: the VAE's running statistics undone, then the patches unfolded.
        bn = pipe.vae.bn
        mean = bn.running_mean.view(1, -1, 1, 1).to(latents.device, latents.dtype)
        std = torch.sqrt(bn.running_var.view(1, -1, 1, 1) + pipe.vae.config.batch_norm_eps).to(latents.device)
        return pipe._unpatchify_latents(latents * std.to(latents.dtype) + mean)

    def preview_noise_shape(self, vae: Any, side: int) -> tuple[int, int, int]:
        return 4 * int(vae.config.latent_channels), side // 2, side // 2


class Flux2DevEngine(Flux2KleinEngine):
    family = "flux2dev"
    pipeline_class = Flux2Pipeline
    inpaint_class = None  # diffusers has no inpaint pipeline for FLUX.2 [dev]

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        # Guidance-distilled: `guidance_scale` feeds its guidance embedding; no negative prompt.
        return {"guidance_scale": request.guidance_scale}

    def preview_unpack(self, pipe: Any, latents: torch.Tensor, width: int, height: int) -> torch.Tensor:
        # As klein's, but Flux2Pipeline's unpacking takes the ids alone.
        rows, cols = height // (pipe.vae_scale_factor * 2), width // (pipe.vae_scale_factor * 2)
        ids = pipe._prepare_latent_ids(torch.empty(latents.shape[0], 1, rows, cols)).to(latents.device)
        return pipe._unpack_latents_with_ids(latents, ids)
