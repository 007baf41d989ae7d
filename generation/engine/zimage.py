"""Z-Image (Turbo and base) through diffusers.ZImagePipeline."""

from typing import Any

from diffusers import (
    ZImageControlNetModel,
    ZImageControlNetPipeline,
    ZImageImg2ImgPipeline,
    ZImageInpaintPipeline,
    ZImagePipeline,
)

from .base import DiffusersEngine
from .types import GenerationRequest


class ZImageEngine(DiffusersEngine):
    family = "zimage"
    pipeline_class = ZImagePipeline
    img2img_class = ZImageImg2ImgPipeline
    inpaint_class = ZImageInpaintPipeline
    controlnet_pipeline_class = ZImageControlNetPipeline
    controlnet_model_class = ZImageControlNetModel

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        # Turbo is distilled to run without CFG (guidance 0); the negative prompt only acts with CFG.
        negative = request.negative_prompt if request.guidance_scale > 1 else None
        return {"guidance_scale": request.guidance_scale, "negative_prompt": negative or None}
