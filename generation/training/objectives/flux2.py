"""FLUX.2 [klein]: a rectified-flow DiT on patchified latents, read by a Qwen3 encoder.

What differs from FLUX.1: the VAE's latents are cut into 2x2 patches (4x the channels) and
normalised by the VAE's own batch-norm running statistics, not one shift and scale; tokens are
placed by 4-D position ids. The conditioning is three Qwen3 layers stacked per token, with no
pooled vector and no guidance embedding. The transformer reads the timestep as sigma (the
pipeline passes t / 1000) and predicts the velocity noise - x0. Noise levels follow the shift
the pipeline's scheduler applies at sampling time: klein's sets it by resolution and step count
(`compute_empirical_mu`), where diffusers' trainer draws them uniformly.

Matched against diffusers' `examples/dreambooth/train_dreambooth_lora_flux2_klein.py` (main's
training loop) and `Flux2KleinPipeline.__call__` / `_encode_vae_image`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from diffusers import Flux2KleinPipeline
from diffusers.pipelines.flux2.pipeline_flux2_klein import compute_empirical_mu

from ..flow import sample_sigmas, scheduler_shift
from .base import Conditioning, Objective

# The single blocks' fused output (attention and MLP) is `attn.to_out`, a name the double blocks
# give a ModuleList peft cannot wrap: so it is named block by block, up to FLUX.2's 48 (klein 9B has 24).
SINGLE_OUTPUTS = [f"single_transformer_blocks.{i}.attn.to_out" for i in range(48)]


class Flux2KleinObjective(Objective):
    family = "flux2"
    default_sequence_length = 512  # the pipeline's default: klein attends to the padding as well
    pipeline_class = Flux2KleinPipeline
    # As diffusers' klein trainer (attention, the single blocks' fused QKV+MLP input and output),
    # plus the image stream's feed-forward, as the FLUX.1 objective adds for drawing styles.
    lora_targets: ClassVar[list[str]] = [
        *Objective.lora_targets,
        "to_qkv_mlp_proj",
        *SINGLE_OUTPUTS,
        "ff.linear_in",
        "ff.linear_out",
    ]

    @torch.no_grad()
    def latents(self, pixels: torch.Tensor) -> torch.Tensor:
        # The pipeline's own encoder for reference images: the mode, patchified, batch-normalised.
        return self.pipe._encode_vae_image(pixels.to(self.pipe.vae.device, self.pipe.vae.dtype), generator=None)

    @torch.no_grad()
    def embed(self, texts: list[str]) -> Conditioning:
        hidden, text_ids = self.pipe.encode_prompt(
            prompt=texts, device=self.device, max_sequence_length=self.max_sequence_length
        )
        return Conditioning(hidden, torch.empty(len(texts), 0), text_ids)  # no pooled vector

    def inputs(
        self, latents: torch.Tensor, cond: Conditioning, rows: torch.Tensor, generator: torch.Generator
    ) -> tuple[dict[str, Any], torch.Tensor]:
        """The transformer's keyword arguments for one noised batch, and the packed velocity it should predict."""
        assert cond.extra is not None
        n, _, h, w = latents.shape
        noise = torch.randn(latents.shape, generator=generator).to(latents)  # the run's draws on any device
        sigmas = sample_sigmas(n, shift=self.shift(h * w), generator=generator).to(latents)
        s = sigmas.view(n, 1, 1, 1)
        kwargs = {
            "hidden_states": Flux2KleinPipeline._pack_latents((1 - s) * latents + s * noise),
            "encoder_hidden_states": cond.hidden[rows],
            "timestep": sigmas,  # the pipeline passes the scheduler's t / 1000
            "img_ids": Flux2KleinPipeline._prepare_latent_ids(latents),
            "txt_ids": cond.extra[rows],
            "guidance": None,
        }
        return kwargs, Flux2KleinPipeline._pack_latents(noise - latents)

    def loss(self, latents: torch.Tensor, cond: Conditioning, rows: torch.Tensor, generator: torch.Generator) -> Any:
        kwargs, target = self.inputs(latents, cond, rows, generator)
        prediction = self.model(**kwargs, return_dict=False)[0]
        return F.mse_loss(prediction.float(), target.float())

    def shift(self, image_tokens: int) -> float:
        """The shift the pipeline's scheduler applies to sigmas at this many image tokens."""
        steps = 4 if self.pipe.config.is_distilled else 50  # what the distilled and base models sample with
        return scheduler_shift(self.pipe.scheduler.config, compute_empirical_mu(image_tokens, steps))

    def sample_kwargs(self) -> dict[str, Any]:
        # The distilled models run without guidance (the pipeline warns at its default of 4).
        guidance = {"guidance_scale": 1.0} if self.pipe.config.is_distilled else {}
        return {"max_sequence_length": self.max_sequence_length, **guidance}
