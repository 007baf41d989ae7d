"""SDXL base through diffusers.StableDiffusionXLPipeline (the refiner stage hooks in later)."""

from typing import Any

from diffusers import (
    ControlNetModel,
    StableDiffusionXLControlNetPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
)

from .base import DiffusersEngine
from .types import GenerationRequest


class SDXLEngine(DiffusersEngine):
    family = "sdxl"
    pipeline_class = StableDiffusionXLPipeline
    img2img_class = StableDiffusionXLImg2ImgPipeline
    inpaint_class = StableDiffusionXLInpaintPipeline
    controlnet_pipeline_class = StableDiffusionXLControlNetPipeline
    controlnet_model_class = ControlNetModel
    control_image_argument = "image"
    supports_ip_adapter = True

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        return {"guidance_scale": request.guidance_scale, "negative_prompt": request.negative_prompt or None}
