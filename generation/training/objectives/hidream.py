"""HiDream-I1: a rectified-flow mixture-of-experts DiT fed by four text encoders.

What differs from FLUX.1: the conditioning is CLIP-L's and CLIP-G's pooled vectors side by side,
T5's hidden states, and every hidden layer of a Llama (layers first: (layers, captions, tokens,
width)), which the transformer reads a layer per block. It takes the scheduler's timestep as is
(sigma x 1000), and its output is minus the velocity: the pipeline negates it before the Euler
step, so the target here is x0 - noise. In training mode it lays its output out per patch (see
`as_latents`). The LoRA goes on the image stream's attention only, as diffusers' trainer puts it:
the routed experts and their gate stay as they are.

Matched against diffusers' `examples/dreambooth/train_dreambooth_lora_hidream.py` (main's
training loop) and `HiDreamImagePipeline.__call__`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from diffusers import HiDreamImagePipeline
from diffusers.pipelines.hidream_image.pipeline_hidream_image import calculate_shift

from ...engine.types import EngineError
from ..flow import sample_sigmas, scheduler_shift
from .base import Conditioning, Objective


@dataclass(kw_only=True)
class HiDreamConditioning(Conditioning):
    llama: torch.Tensor  # (layers, captions, tokens, width): the caption is the second axis


class HiDreamObjective(Objective):
    family = "hidream"
    default_sequence_length = 128  # HiDreamImagePipeline's default, so captions train as the engine prompts
    pipeline_class = HiDreamImagePipeline
    # Its attention names the output projection `to_out` (a Linear); the text stream's `*_t` twins stay out.
    lora_targets: ClassVar[list[str]] = ["to_k", "to_q", "to_v", "to_out"]

    @classmethod
    def load(cls, path: Path, options: dict[str, Any], **kwargs: Any) -> Any:
        """The published repos hold no Llama: like the engine, the entry's `llama` option names
        it (a cached repo or a folder), loaded beside the folder's three encoders."""
        if (path / "text_encoder_4").is_dir():
            return super().load(path, options, **kwargs)
        from transformers import AutoTokenizer, LlamaForCausalLM

        llama = options.get("llama")
        if not llama:
            raise EngineError(
                f"{path.name} has no text_encoder_4: set the model's options to "
                '{"llama": "meta-llama/Llama-3.1-8B-Instruct"} (a cached repo or a folder).'
            )
        dtype = kwargs.get("dtype", torch.float32)
        encoder = LlamaForCausalLM.from_pretrained(
            llama,
            dtype=dtype if isinstance(dtype, torch.dtype) else torch.float32,
            output_hidden_states=True,
            local_files_only=True,
        )
        tokenizer = AutoTokenizer.from_pretrained(llama, local_files_only=True)
        return super().load(path, options, text_encoder_4=encoder, tokenizer_4=tokenizer, **kwargs)

    @torch.no_grad()
    def embed(self, texts: list[str]) -> Conditioning:
        t5, _, llama, _, pooled, _ = self.pipe.encode_prompt(
            prompt=texts,
            device=self.device,
            do_classifier_free_guidance=False,
            max_sequence_length=self.max_sequence_length,
        )
        return HiDreamConditioning(t5, pooled, llama=llama)

    def inputs(
        self, latents: torch.Tensor, cond: Conditioning, rows: torch.Tensor, generator: torch.Generator
    ) -> tuple[dict[str, Any], torch.Tensor]:
        """The transformer's keyword arguments for one noised batch, and the output it should give."""
        assert isinstance(cond, HiDreamConditioning)
        n = latents.shape[0]
        # Drawn on the CPU from the run's generator (the same draws on any device), then moved.
        noise = torch.randn(latents.shape, generator=generator).to(latents)
        sigmas = sample_sigmas(n, shift=self.shift(), generator=generator)
        s = sigmas.to(latents).view(n, 1, 1, 1)
        kwargs = {
            "hidden_states": (1 - s) * latents + s * noise,
            # The scheduler's own timesteps, in float32 as the pipeline passes them (not rounded to bf16).
            "timesteps": (sigmas * 1000).to(latents.device),
            "encoder_hidden_states_t5": cond.hidden[rows],
            "encoder_hidden_states_llama3": cond.llama[:, rows],
            "pooled_embeds": cond.pooled[rows],
        }
        return kwargs, latents - noise  # minus the velocity noise - x0 (the pipeline negates the output)

    def loss(self, latents: torch.Tensor, cond: Conditioning, rows: torch.Tensor, generator: torch.Generator) -> Any:
        kwargs, target = self.inputs(latents, cond, rows, generator)
        output = self.model(**kwargs, return_dict=False)[0]
        return F.mse_loss(self.as_latents(output, latents.shape[-2:]).float(), target.float())

    def as_latents(self, output: torch.Tensor, size: torch.Size) -> torch.Tensor:
        """The transformer's output as latents (n, c, h, w). In training mode it gives (n, c, patches,
        p*p) instead, padded to its longest sequence for a non-square size; in eval mode (as the
        pipeline runs it) the latents themselves."""
        if not self.model.training or self.model.config.force_inference_output:
            return output
        p = self.model.config.patch_size
        (h, w), (n, c) = size, output.shape[:2]
        grid = output[:, :, : (h // p) * (w // p)].reshape(n, c, h // p, w // p, p, p)
        return grid.permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)

    def shift(self) -> float:
        # Dev and Fast ship a flow-match Euler scheduler, Full a flow UniPC one; the pipeline passes
        # the mu of the transformer's longest sequence (used only with dynamic shifting).
        return scheduler_shift(self.pipe.scheduler.config, calculate_shift(self.model.max_seq))
