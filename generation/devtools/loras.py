"""Tiny random-weight LoRAs in diffusers' format, for the tests and the benchmarks."""

from __future__ import annotations

from pathlib import Path

import torch


def make_lora(family: str, tiny_dir: Path, folder: Path, seed: int) -> Path:
    """A diffusers-format LoRA on the attention layers of a tiny pipeline's denoiser."""
    from diffusers import DiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = DiffusionPipeline.from_pretrained(tiny_dir)
    denoiser_name = "unet" if family == "sdxl" else "transformer"
    denoiser = getattr(pipe, denoiser_name)
    torch.manual_seed(seed)
    targets = ["to_q", "to_k", "to_v", "to_out.0"]
    denoiser.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=targets, init_lora_weights=False))
    # Random LoRA weights at their usual scale barely move a tiny model; make the effect plain.
    state = {k: v * 30 if "lora_B" in k else v for k, v in get_peft_model_state_dict(denoiser).items()}
    type(pipe).save_lora_weights(folder, **{f"{denoiser_name}_lora_layers": state})
    return folder / "pytorch_lora_weights.safetensors"
