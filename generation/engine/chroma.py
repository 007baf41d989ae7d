"""Chroma1 (lodestones/Chroma1-HD, Apache-2.0) through diffusers.ChromaPipeline: FLUX.1 [schnell]'s
architecture retrained, with one T5 encoder and real classifier-free guidance (so the asset type's
negative prompt acts)."""

from pathlib import Path
from typing import Any

import torch
from diffusers import ChromaImg2ImgPipeline, ChromaInpaintPipeline, ChromaPipeline

from .base import DiffusersEngine
from .types import GenerationRequest


class ChromaEngine(DiffusersEngine):
    family = "chroma"
    pipeline_class = ChromaPipeline
    img2img_class = ChromaImg2ImgPipeline
    inpaint_class = ChromaInpaintPipeline

    def load(self, path: Path) -> Any:
        pipe = super().load(path)
        # diffusers 0.42's ChromaInpaintPipeline reads `guidance_embeds` from the transformer's
        # config, which Chroma's transformer does not have (it takes no guidance embedding).
        if "guidance_embeds" not in pipe.transformer.config:
            pipe.transformer.register_to_config(guidance_embeds=False)
        return pipe

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        negative = request.negative_prompt if request.guidance_scale > 1 else None
        return {"guidance_scale": request.guidance_scale, "negative_prompt": negative or None}

    def preview_unpack(self, pipe: Any, latents: torch.Tensor, width: int, height: int) -> torch.Tensor:
        # Packed 2x2 latent patches, as FLUX.1's.
        return pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor)
