"""Z-Image: a single-stream rectified-flow DiT that patchifies latents itself, read by a Qwen3 encoder.

What differs from FLUX.1: the transformer takes lists, one (c, 1, h, w) latent and one caption of
its own length (no padding, no pooled vector) per image. Its timestep runs the other way, 1 - sigma
(the pipeline passes (1000 - t) / 1000), and its output is minus the velocity: the pipeline negates
it before the Euler step, so the target here is x0 - noise. Latents are normalised by the VAE's
shift and scale as FLUX.1's; noise levels follow the shift the pipeline's scheduler applies.

Matched against diffusers' `examples/dreambooth/train_dreambooth_lora_z_image.py` (main's training
loop) and `ZImagePipeline.__call__`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from diffusers import ZImagePipeline
from torch.nn.utils.rnn import pad_sequence

from ..flow import sample_sigmas, sequence_shift
from .base import Conditioning, Objective


@dataclass(kw_only=True)
class ZImageConditioning(Conditioning):
    lengths: torch.Tensor  # each caption's tokens: the table is padded to its longest caption

    def captions(self, rows: torch.Tensor) -> list[torch.Tensor]:
        return [self.hidden[row, : self.lengths[row]] for row in rows.tolist()]


class ZImageObjective(Objective):
    family = "zimage"
    default_sequence_length = 512  # ZImagePipeline's default, so captions train as the engine prompts
    pipeline_class = ZImagePipeline
    # Attention as diffusers' Z-Image trainer, and the SwiGLU feed-forward too (in the refiners as
    # well as the main layers), as the FLUX.1 objective adds for drawing styles.
    lora_targets: ClassVar[list[str]] = [
        *Objective.lora_targets,
        "feed_forward.w1",
        "feed_forward.w2",
        "feed_forward.w3",
    ]

    @torch.no_grad()
    def embed(self, texts: list[str]) -> Conditioning:
        # A copy: the pipeline writes each prompt's chat template back into the list it is given.
        captions, _ = self.pipe.encode_prompt(
            prompt=list(texts),
            device=self.device,
            do_classifier_free_guidance=False,
            max_sequence_length=self.max_sequence_length,
        )
        lengths = torch.tensor([len(caption) for caption in captions])
        return ZImageConditioning(pad_sequence(captions, batch_first=True), torch.empty(len(texts), 0), lengths=lengths)

    def inputs(
        self, latents: torch.Tensor, cond: Conditioning, rows: torch.Tensor, generator: torch.Generator
    ) -> tuple[dict[str, Any], torch.Tensor]:
        """The transformer's arguments for one noised batch, and the stacked output it should give."""
        assert isinstance(cond, ZImageConditioning)
        n, _, h, w = latents.shape
        noise = torch.randn(latents.shape, generator=generator).to(latents)  # the run's draws on any device
        sigmas = sample_sigmas(n, shift=self.shift((h // 2) * (w // 2)), generator=generator).to(latents)
        s = sigmas.view(n, 1, 1, 1)
        kwargs = {
            "x": list(((1 - s) * latents + s * noise).unsqueeze(2).unbind(0)),  # one-frame clips
            "t": 1 - sigmas,  # the pipeline passes (1000 - t) / 1000: 0 is pure noise
            "cap_feats": cond.captions(rows),
        }
        return kwargs, latents - noise  # the pipeline steps along minus the output

    def loss(self, latents: torch.Tensor, cond: Conditioning, rows: torch.Tensor, generator: torch.Generator) -> Any:
        kwargs, target = self.inputs(latents, cond, rows, generator)
        prediction = torch.stack(self.model(**kwargs, return_dict=False)[0]).squeeze(2)
        return F.mse_loss(prediction.float(), target.float())

    def shift(self, image_tokens: int) -> float:
        """The shift the pipeline's scheduler applies to sigmas at this many image tokens (Z-Image's
        own schedulers: a fixed one)."""
        return sequence_shift(self.pipe.scheduler.config, image_tokens)

    def sample_kwargs(self) -> dict[str, Any]:
        # Z-Image Turbo, the studio's Z-Image, is distilled to run without classifier-free guidance.
        return {"max_sequence_length": self.max_sequence_length, "guidance_scale": 0.0}
