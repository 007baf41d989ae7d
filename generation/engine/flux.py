"""FLUX.1 (dev, schnell, and the tiny offline model) through diffusers.FluxPipeline."""

from pathlib import Path
from typing import Any

import torch
from diffusers import (
    FluxControlNetModel,
    FluxControlNetPipeline,
    FluxImg2ImgPipeline,
    FluxInpaintPipeline,
    FluxPipeline,
)

from ..lora_files import detect, read_header
from .base import DiffusersEngine
from .loras import converted_state_dict
from .types import GenerationRequest


class FluxEngine(DiffusersEngine):
    family = "flux"
    pipeline_class = FluxPipeline
    img2img_class = FluxImg2ImgPipeline
    inpaint_class = FluxInpaintPipeline
    controlnet_pipeline_class = FluxControlNetPipeline
    controlnet_model_class = FluxControlNetModel
    supports_ip_adapter = True  # XLabs' FLUX IP-Adapter (non-commercial): the reference group's

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        # FLUX.1 is guidance-distilled: `guidance_scale` is an embedding, and a negative prompt
        # only acts with true CFG (two passes a step), so the asset type's negative prompt is sent
        # only to a model whose entry asks for true CFG (the demo model: it draws its subjects
        # more faithfully with it; FLUX.1 dev users turn it on for negative prompts).
        kwargs: dict[str, Any] = {"guidance_scale": request.guidance_scale}
        if "max_sequence_length" in self.options:  # a model trained on short T5 sequences must run on them
            kwargs["max_sequence_length"] = self.options["max_sequence_length"]
        # Not for inpaint or outpaint: a bolder repaint bleeds through the VAE's decoder into what
        # is kept (the demo's kept half moved by 15-20 levels with it, 11.5 without).
        true_cfg = float(self.options.get("true_cfg_scale", 1.0))
        if true_cfg > 1.0 and request.mask_image is None:
            kwargs |= {"true_cfg_scale": true_cfg, "negative_prompt": request.negative_prompt}
        return kwargs

    def lora_weights(self, path: Path) -> str | dict[str, Any]:
        # BFL-named files go through the studio's converter, which splits fused layers by this
        # model's widths (diffusers' assumes FLUX.1's); the rest diffusers converts on load.
        _, fmt = detect(list(read_header(path)))
        if fmt in ("kohya", "ai-toolkit"):
            return converted_state_dict(path, fmt, self.pipe)
        return str(path)

    def preview_unpack(self, pipe: Any, latents: torch.Tensor, width: int, height: int) -> torch.Tensor:
        # FLUX packs 2x2 latent patches into tokens: (batch, h/2 * w/2, channels * 4).
        return pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor)
