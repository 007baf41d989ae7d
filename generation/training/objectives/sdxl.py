"""SDXL: an epsilon- (or v-) predicting UNet with two CLIP encoders and size conditioning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, StableDiffusionXLPipeline

from .base import Conditioning, Objective


class SDXLObjective(Objective):
    family = "sdxl"
    network = "unet"
    pipeline_class = StableDiffusionXLPipeline

    def __init__(self, pipe: Any, *, max_sequence_length: int) -> None:
        super().__init__(pipe, max_sequence_length=max_sequence_length)
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)

    @torch.no_grad()
    def latents(self, pixels: torch.Tensor) -> torch.Tensor:
        vae = self.pipe.vae
        pixels = pixels.to(vae.device, vae.dtype)
        return torch.cat([vae.encode(p.unsqueeze(0)).latent_dist.mode() for p in pixels]) * vae.config.scaling_factor

    @torch.no_grad()
    def embed(self, texts: list[str]) -> Conditioning:
        hidden, _, pooled, _ = self.pipe.encode_prompt(
            prompt=texts, device=self.device, do_classifier_free_guidance=False
        )
        return Conditioning(hidden, pooled)

    def loss(self, latents: torch.Tensor, cond: Conditioning, rows: torch.Tensor, generator: torch.Generator) -> Any:
        n, _, h, w = latents.shape
        noise = torch.randn(latents.shape, generator=generator).to(latents)
        steps = self.noise_scheduler.config.num_train_timesteps
        timesteps = torch.randint(0, steps, (n,), generator=generator).to(latents.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        size = [h * self.pipe.vae_scale_factor, w * self.pipe.vae_scale_factor]
        time_ids = torch.tensor([[*size, 0, 0, *size]] * n).to(latents)  # original, crop, target
        prediction = self.model(
            noisy,
            timesteps,
            encoder_hidden_states=cond.hidden[rows],
            added_cond_kwargs={"text_embeds": cond.pooled[rows], "time_ids": time_ids},
            return_dict=False,
        )[0]
        if self.noise_scheduler.config.prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        else:
            target = noise
        return F.mse_loss(prediction.float(), target.float())

    def save(self, folder: Path, layers: dict[str, Any]) -> None:
        self.pipeline_class.save_lora_weights(str(folder), unet_lora_layers=layers)

    def sample_kwargs(self) -> dict[str, Any]:
        return {}
