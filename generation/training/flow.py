"""The FLUX rectified-flow objective, shared by LoRA runs and the from-scratch demo model.

A clean latent x0 and noise e are mixed as x_s = (1 - s) x0 + s e at a noise level s, and the
transformer learns the velocity e - x0 (what FluxPipeline's Euler scheduler integrates).
Noise levels are drawn with the same shift the inference scheduler uses, so training spends
its steps where sampling does.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import FluxPipeline
from diffusers.pipelines.flux.pipeline_flux import calculate_shift


@torch.no_grad()
def encode_images(vae: Any, pixels: torch.Tensor, *, batch: int = 64) -> torch.Tensor:
    """Images in [-1, 1] (n, 3, h, w) to normalised latents, as FluxPipeline expects them."""
    pixels = pixels.to(vae.device, vae.dtype)
    chunks = [vae.encode(pixels[i : i + batch]).latent_dist.mode() for i in range(0, len(pixels), batch)]
    latents = torch.cat(chunks)
    return (latents - vae.config.shift_factor) * vae.config.scaling_factor


def sample_sigmas(n: int, *, shift: float, generator: torch.Generator | None = None) -> torch.Tensor:
    u = torch.rand(n, generator=generator)
    return shift * u / (1 + (shift - 1) * u)


def flow_loss(
    transformer: Any,
    latents: torch.Tensor,
    hidden: torch.Tensor,
    pooled: torch.Tensor,
    text_ids: torch.Tensor,
    *,
    shift: float = 3.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean squared error of the predicted velocity for one batch of latents (n, c, h, w)."""
    n, c, h, w = latents.shape
    # Drawn on the CPU from the run's generator (the same draws on any device), then moved.
    noise = torch.randn(latents.shape, generator=generator).to(latents)
    sigmas = sample_sigmas(n, shift=shift, generator=generator).to(latents).view(n, 1, 1, 1)
    noisy = (1 - sigmas) * latents + sigmas * noise
    packed = FluxPipeline._pack_latents(noisy, n, c, h, w)
    image_ids = FluxPipeline._prepare_latent_image_ids(n, h // 2, w // 2, latents.device, latents.dtype)
    guidance = torch.full((n,), 1.0).to(latents) if transformer.config.guidance_embeds else None
    prediction = transformer(
        hidden_states=packed,
        timestep=sigmas.view(n),
        guidance=guidance,
        pooled_projections=pooled,
        encoder_hidden_states=hidden,
        txt_ids=text_ids,
        img_ids=image_ids,
        return_dict=False,
    )[0]
    target = FluxPipeline._pack_latents(noise - latents, n, c, h, w)
    return F.mse_loss(prediction.float(), target.float())


def scheduler_shift(config: Any, mu: float) -> float:
    """The shift a flow-match scheduler applies given the pipeline's `mu`, as one number: with
    dynamic shifting both time-shift kinds are the plain s*t / (1 + (s-1)*t), with s = e^mu or mu."""
    if not config.get("use_dynamic_shifting", False):
        return float(config.get("shift") or config.get("flow_shift") or 1.0)  # UniPC's is "flow_shift"
    return math.exp(mu) if config.get("time_shift_type", "exponential") == "exponential" else mu


def sequence_shift(config: Any, image_tokens: int) -> float:
    """The shift of a flow-match scheduler whose pipeline passes the `mu` of its image sequence
    length (FLUX.1's `calculate_shift`, which Qwen-Image and Z-Image copy), as one number."""
    mu = calculate_shift(
        image_tokens,
        config.get("base_image_seq_len", 256),
        config.get("max_image_seq_len", 4096),
        config.get("base_shift", 0.5),
        config.get("max_shift", 1.15),
    )
    return scheduler_shift(config, mu)
