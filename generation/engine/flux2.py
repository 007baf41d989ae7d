"""FLUX.2 [klein] (4B and 9B) through diffusers.Flux2KleinPipeline."""

from typing import Any

from diffusers import Flux2KleinPipeline

from .base import DiffusersEngine
from .types import GenerationRequest


class Flux2KleinEngine(DiffusersEngine):
    family = "flux2"
    pipeline_class = Flux2KleinPipeline

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        # The pipeline has no negative prompt; the distilled klein models run at guidance 1.
        return {"guidance_scale": request.guidance_scale}
