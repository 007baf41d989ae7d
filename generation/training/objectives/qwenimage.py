"""Qwen-Image: a rectified-flow MMDiT on packed 2x2 latent patches, read by a Qwen2.5-VL encoder.

What differs from FLUX.1: the VAE is a video one, so an image is a clip of one frame and its
latents are 5-D (n, c, 1, h, w), normalised per channel by the VAE's `latents_mean`/`latents_std`
rather than one shift and scale. The captions' embeddings come with an attention mask (no pooled
vector), the transformer reads the timestep as sigma (the pipeline passes t / 1000) and the image
grid as `img_shapes`. Noise levels follow the scheduler's resolution-dependent shift, as the
pipeline's `calculate_shift` sets it at sampling time.

Matched against diffusers' `examples/dreambooth/train_dreambooth_lora_qwen_image.py` (main's
training loop) and `QwenImagePipeline.__call__`; LoRA on attention only, as that trainer does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import QwenImagePipeline

from ..flow import sample_sigmas, sequence_shift
from .base import Conditioning, Objective


@dataclass(kw_only=True)
class QwenConditioning(Conditioning):
    mask: torch.Tensor  # (captions, tokens): the caption table is padded to its longest caption


class QwenImageObjective(Objective):
    family = "qwenimage"
    default_sequence_length = 512  # QwenImagePipeline's default, so captions train as the engine prompts
    pipeline_class = QwenImagePipeline

    @torch.no_grad()
    def latents(self, pixels: torch.Tensor) -> torch.Tensor:
        vae = self.pipe.vae
        latents = vae.encode(pixels.to(vae.device, vae.dtype)[:, :, None]).latent_dist.mode()  # (n, c, 1, h, w)
        config = vae.config
        mean, std = (
            torch.tensor(v).view(1, -1, 1, 1, 1).to(latents) for v in (config.latents_mean, config.latents_std)
        )
        return (latents - mean) / std

    @torch.no_grad()
    def embed(self, texts: list[str]) -> Conditioning:
        hidden, mask = self.pipe.encode_prompt(
            prompt=texts, device=self.device, max_sequence_length=self.max_sequence_length
        )
        if mask is None:  # the pipeline drops an all-ones mask
            mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
        return QwenConditioning(hidden, torch.empty(len(texts), 0), mask=mask)  # no pooled vector

    def inputs(
        self, latents: torch.Tensor, cond: Conditioning, rows: torch.Tensor, generator: torch.Generator
    ) -> tuple[dict[str, Any], torch.Tensor]:
        """The transformer's keyword arguments for one noised batch, and the packed velocity it should predict."""
        assert isinstance(cond, QwenConditioning)
        n, c, _, h, w = latents.shape
        # Drawn on the CPU from the run's generator (the same draws on any device), then moved.
        noise = torch.randn(latents.shape, generator=generator).to(latents)
        sigmas = sample_sigmas(n, shift=self.shift((h // 2) * (w // 2)), generator=generator).to(latents)
        s = sigmas.view(n, 1, 1, 1, 1)
        mask = cond.mask[rows]
        length = int(mask.sum(1).max())  # the batch's longest caption: the rest is padding for all rows
        kwargs = {
            "hidden_states": QwenImagePipeline._pack_latents((1 - s) * latents + s * noise, n, c, h, w),
            "encoder_hidden_states": cond.hidden[rows, :length],
            "encoder_hidden_states_mask": mask[:, :length],
            "timestep": sigmas,  # the pipeline passes the scheduler's t / 1000
            "img_shapes": [[(1, h // 2, w // 2)]] * n,
        }
        return kwargs, QwenImagePipeline._pack_latents(noise - latents, n, c, h, w)

    def loss(self, latents: torch.Tensor, cond: Conditioning, rows: torch.Tensor, generator: torch.Generator) -> Any:
        kwargs, target = self.inputs(latents, cond, rows, generator)
        prediction = self.model(**kwargs, return_dict=False)[0]
        return F.mse_loss(prediction.float(), target.float())

    def sample_kwargs(self) -> dict[str, Any]:
        # True CFG at the pipeline's own scale, against the blank negative the engine sends: without
        # a negative prompt QwenImagePipeline skips guidance, and samples would not look like renders.
        return {"max_sequence_length": self.max_sequence_length, "negative_prompt": " ", "true_cfg_scale": 4.0}

    def shift(self, image_tokens: int) -> float:
        """The shift the pipeline's scheduler applies to sigmas at this many image tokens."""
        return sequence_shift(self.pipe.scheduler.config, image_tokens)
