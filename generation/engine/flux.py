"""FLUX.1 (dev, schnell, and the tiny offline model) through diffusers.FluxPipeline."""

from typing import Any

from diffusers import FluxImg2ImgPipeline, FluxPipeline

from .base import DiffusersEngine
from .types import GenerationRequest


class FluxEngine(DiffusersEngine):
    family = "flux"
    pipeline_class = FluxPipeline
    img2img_class = FluxImg2ImgPipeline

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        # FLUX.1 is guidance-distilled: `guidance_scale` is an embedding, and a negative prompt
        # only acts with true CFG (two passes a step), so the preset's negative prompt is not sent.
        return {"guidance_scale": request.guidance_scale}
