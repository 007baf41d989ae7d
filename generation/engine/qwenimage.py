"""Qwen-Image through diffusers.QwenImagePipeline."""

from typing import Any

import torch
from diffusers import QwenImageImg2ImgPipeline, QwenImagePipeline

from .base import DiffusersEngine
from .previews import Encoder
from .types import GenerationRequest


class QwenImageEngine(DiffusersEngine):
    family = "qwenimage"
    pipeline_class = QwenImagePipeline
    img2img_class = QwenImageImg2ImgPipeline

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        # Qwen-Image's guidance is true CFG (`true_cfg_scale`, two passes a step, with the negative
        # prompt); `guidance_scale` is only read by guidance-distilled checkpoints.
        return {"true_cfg_scale": request.guidance_scale, "negative_prompt": request.negative_prompt or " "}

    def preview_encoder(self, vae: Any) -> Encoder:
        # A video VAE: images are clips of one frame, (batch, channels, frames, h, w).
        def encode(images: torch.Tensor) -> torch.Tensor:
            return vae.encode(images[:, :, None]).latent_dist.mode()[:, :, 0]

        return encode

    def preview_latents(self, pipe: Any, latents: torch.Tensor, width: int, height: int) -> torch.Tensor:
        latents = pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor)[:, :, 0]
        config = pipe.vae.config
        mean = torch.tensor(config.latents_mean, device=latents.device).view(1, -1, 1, 1)
        std = torch.tensor(config.latents_std, device=latents.device).view(1, -1, 1, 1)
        return latents * std + mean
