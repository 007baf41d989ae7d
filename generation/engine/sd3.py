"""Stable Diffusion 3.5 (Large, Medium) through diffusers.StableDiffusion3Pipeline."""

from typing import Any

from diffusers import StableDiffusion3Img2ImgPipeline, StableDiffusion3Pipeline

from .base import DiffusersEngine
from .types import GenerationRequest


class SD3Engine(DiffusersEngine):
    family = "sd3"
    pipeline_class = StableDiffusion3Pipeline
    img2img_class = StableDiffusion3Img2ImgPipeline

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        # SD3 runs real classifier-free guidance, so the asset type's negative prompt applies.
        return {"guidance_scale": request.guidance_scale, "negative_prompt": request.negative_prompt or None}
