"""Qwen-Image through diffusers.QwenImagePipeline."""

from typing import Any

import torch
from diffusers import (
    QwenImageControlNetModel,
    QwenImageControlNetPipeline,
    QwenImageImg2ImgPipeline,
    QwenImageInpaintPipeline,
    QwenImagePipeline,
)

from .base import DiffusersEngine
from .latent_previews import Decoder
from .types import GenerationRequest


class QwenImageEngine(DiffusersEngine):
    family = "qwenimage"
    pipeline_class = QwenImagePipeline
    img2img_class = QwenImageImg2ImgPipeline
    inpaint_class = QwenImageInpaintPipeline
    controlnet_pipeline_class = QwenImageControlNetPipeline
    controlnet_model_class = QwenImageControlNetModel

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        # Qwen-Image's guidance is true CFG (`true_cfg_scale`, two passes a step, with the negative
        # prompt); `guidance_scale` is only read by guidance-distilled checkpoints.
        return {"true_cfg_scale": request.guidance_scale, "negative_prompt": request.negative_prompt or " "}

    # A video VAE: images are clips of one frame, latents (batch, channels, frames, h, w).

    def preview_decoder(self, vae: Any) -> Decoder:
        def decode(latents: torch.Tensor) -> torch.Tensor:
            return vae.decode(latents[:, :, None]).sample[:, :, 0]

        return decode

    def preview_noise_shape(self, vae: Any, side: int) -> tuple[int, int, int]:
        return int(vae.config.z_dim), side, side

    def preview_unpack(self, pipe: Any, latents: torch.Tensor, width: int, height: int) -> torch.Tensor:
        return pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor)[:, :, 0]

    def preview_denormalize(self, pipe: Any, latents: torch.Tensor) -> torch.Tensor:
        config = pipe.vae.config
        mean = torch.tensor(config.latents_mean, device=latents.device, dtype=latents.dtype).view(1, -1, 1, 1)
        std = torch.tensor(config.latents_std, device=latents.device, dtype=latents.dtype).view(1, -1, 1, 1)
        return latents * std + mean
