"""Qwen-Image-Edit-Plus (2509, 2511) through diffusers.QwenImageEditPlusPipeline: Qwen-Image's
transformer trained to change the pictures it is given by an instruction, each picture read by
the vision-language encoder and joined to the latents. It takes one to three pictures: the
image an edit changes and style references. It cannot draw from words alone, so jobs without a
picture run Qwen-Image's own text-to-image pipeline on the same loaded modules (from_pipe)."""

from typing import Any

from diffusers import QwenImageEditPlusPipeline, QwenImagePipeline

from .base import twin
from .qwenimage import QwenImageEngine
from .types import GenerationRequest


class QwenImageEditEngine(QwenImageEngine):
    family = "qwenimageedit"
    pipeline_class = QwenImageEditPlusPipeline
    img2img_class = None
    inpaint_class = None
    controlnet_pipeline_class = None
    controlnet_model_class = None
    edit_argument = "image"
    reference_argument = "image"  # after the image an edit changes: "Picture 1", "Picture 2", ...

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._text_pipe: Any = None
        super().__init__(*args, **kwargs)

    def _pipe_for(self, request: GenerationRequest) -> Any:
        if request.edit_images or request.references:
            return self.pipe
        if self._text_pipe is None:
            self._text_pipe = twin(QwenImagePipeline, self.pipe)
            self._text_pipe.set_progress_bar_config(disable=True)
        return self._text_pipe

    def unload(self) -> None:
        self._text_pipe = None
        super().unload()
