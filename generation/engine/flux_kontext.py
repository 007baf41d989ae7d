"""FLUX.1 Kontext [dev] through diffusers.FluxKontextPipeline: FLUX.1's transformer trained to
change an image by an instruction ("make the background blue"). It draws from words alone too,
and repaints a mask through FluxKontextInpaintPipeline. Its license is non-commercial: an admin
registers it for the reference group only."""

from typing import Any

from diffusers import FluxKontextInpaintPipeline, FluxKontextPipeline

from .flux import FluxEngine
from .types import GenerationRequest


class FluxKontextEngine(FluxEngine):
    family = "fluxkontext"
    pipeline_class = FluxKontextPipeline
    img2img_class = None
    inpaint_class = FluxKontextInpaintPipeline
    controlnet_pipeline_class = None
    controlnet_model_class = None
    supports_ip_adapter = False
    edit_argument = "image"

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        # Kontext rescales what it draws to `max_area` (a megapixel) and the image it edits to one
        # of its training resolutions: both kept at the job's own render size instead, so a
        # 512 px job stays 512 px and an edit changes the image at the size it will be delivered.
        width, height = self.render_size(request.width, request.height)
        return {**super().call_kwargs(request), "max_area": width * height, "_auto_resize": False}

    def edit_inputs(self, images: list[Any], size: tuple[int, int]) -> list[Any]:
        return [image.resize(size) if image.size != size else image for image in images]
