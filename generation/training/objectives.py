"""What differs between families when training a LoRA: the pipeline, the network the adapter
goes on, how captions become conditioning, how latents are normalised, the loss, the saver.

One small class per family behind a string-keyed table, like the engine's adapters.
FLUX.1 and SD3.5 are rectified-flow transformers; SDXL is an epsilon- (or v-) predicting UNet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, FluxPipeline, StableDiffusion3Pipeline, StableDiffusionXLPipeline

from .flow import encode_images, flow_loss, sample_sigmas


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

    @property
    def model(self) -> Any:
        return getattr(self.pipe, self.network)

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
            prompt=texts, prompt_2=None, device=torch.device("cpu"), max_sequence_length=self.max_sequence_length
        )
        return Conditioning(hidden, pooled, text_ids)

    def loss(self, latents: torch.Tensor, cond: Conditioning, rows: torch.Tensor, generator: torch.Generator) -> Any:
        assert cond.extra is not None
        return flow_loss(self.model, latents, cond.hidden[rows], cond.pooled[rows], cond.extra, generator=generator)


class SD3Objective(Objective):
    family = "sd3"
    pipeline_class = StableDiffusion3Pipeline

    @torch.no_grad()
    def embed(self, texts: list[str]) -> Conditioning:
        hidden, _, pooled, _ = self.pipe.encode_prompt(
            prompt=texts,
            prompt_2=None,
            prompt_3=None,
            device=torch.device("cpu"),
            do_classifier_free_guidance=False,
            max_sequence_length=self.max_sequence_length,
        )
        return Conditioning(hidden, pooled)

    def loss(self, latents: torch.Tensor, cond: Conditioning, rows: torch.Tensor, generator: torch.Generator) -> Any:
        n = latents.shape[0]
        noise = torch.randn(latents.shape, generator=generator)
        sigmas = sample_sigmas(n, shift=float(self.pipe.scheduler.config.get("shift", 3.0)), generator=generator)
        s = sigmas.view(n, 1, 1, 1)
        prediction = self.model(
            hidden_states=(1 - s) * latents + s * noise,
            timestep=sigmas * 1000,  # the SD3 pipeline passes the scheduler's timesteps (sigma x 1000)
            encoder_hidden_states=cond.hidden[rows],
            pooled_projections=cond.pooled[rows],
            return_dict=False,
        )[0]
        return F.mse_loss(prediction.float(), (noise - latents).float())


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
        return torch.cat([vae.encode(p.unsqueeze(0)).latent_dist.mode() for p in pixels]) * vae.config.scaling_factor

    @torch.no_grad()
    def embed(self, texts: list[str]) -> Conditioning:
        hidden, _, pooled, _ = self.pipe.encode_prompt(
            prompt=texts, device=torch.device("cpu"), do_classifier_free_guidance=False
        )
        return Conditioning(hidden, pooled)

    def loss(self, latents: torch.Tensor, cond: Conditioning, rows: torch.Tensor, generator: torch.Generator) -> Any:
        n, _, h, w = latents.shape
        noise = torch.randn(latents.shape, generator=generator)
        steps = self.noise_scheduler.config.num_train_timesteps
        timesteps = torch.randint(0, steps, (n,), generator=generator)
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        size = [h * self.pipe.vae_scale_factor, w * self.pipe.vae_scale_factor]
        time_ids = torch.tensor([[*size, 0, 0, *size]] * n, dtype=latents.dtype)  # original, crop, target
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


OBJECTIVES: dict[str, type[Objective]] = {cls.family: cls for cls in (FluxObjective, SD3Objective, SDXLObjective)}
