"""HiDream-I1 (Full, Dev, Fast) through diffusers.HiDreamImagePipeline.

The Hugging Face repos do not contain the 4th text encoder (Llama-3.1-8B-Instruct, under the
Llama 3.1 Community License); the model entry's options name where it is:
`{"llama": "meta-llama/Llama-3.1-8B-Instruct"}` (a repo in the HF cache or a local folder).
HiDream renders about one megapixel whatever the size asked (width and height choose the
aspect ratio), so images are resized to the size the designer picked.
"""

from pathlib import Path
from typing import Any

from diffusers import HiDreamImagePipeline

from .base import DiffusersEngine
from .types import EngineError, GenerationRequest


class HiDreamEngine(DiffusersEngine):
    family = "hidream"
    pipeline_class = HiDreamImagePipeline

    def load(self, path: Path) -> Any:
        if (path / "text_encoder_4").is_dir():
            return super().load(path)
        from transformers import AutoTokenizer, LlamaForCausalLM

        llama = self.options.get("llama")
        if not llama:
            raise EngineError(
                f"{path} has no text_encoder_4: set the model's options to "
                '{"llama": "meta-llama/Llama-3.1-8B-Instruct"} (a cached repo or a folder).'
            )
        encoder = LlamaForCausalLM.from_pretrained(
            llama, dtype=self.dtype, output_hidden_states=True, local_files_only=True
        )  # a Llama from elsewhere stays in the compute dtype: the plan covers the folder's components
        tokenizer = AutoTokenizer.from_pretrained(llama, local_files_only=True)
        return self.pipeline_class.from_pretrained(
            path, text_encoder_4=encoder, tokenizer_4=tokenizer, local_files_only=True, **self.load_kwargs
        )

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        # Full uses real CFG (negative prompt applies); Dev and Fast are distilled with guidance 0.
        negative = request.negative_prompt if request.guidance_scale > 1 else None
        return {"guidance_scale": request.guidance_scale, "negative_prompt": negative or None}
