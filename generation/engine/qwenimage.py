"""Qwen-Image through diffusers.QwenImagePipeline."""

from typing import Any

from diffusers import QwenImageImg2ImgPipeline, QwenImagePipeline

from .base import DiffusersEngine
from .types import GenerationRequest


class QwenImageEngine(DiffusersEngine):
    family = "qwenimage"
    pipeline_class = QwenImagePipeline
    img2img_class = QwenImageImg2ImgPipeline

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        # Qwen-Image's guidance is true CFG (`true_cfg_scale`, two passes a step, with the negative
        # prompt); `guidance_scale` is only read by guidance-distilled checkpoints.
        return {"true_cfg_scale": request.guidance_scale, "negative_prompt": request.negative_prompt or " "}
