"""Tiny random LoRAs in the key layouts of the trainers people use for FLUX.2 [klein], Z-Image,
Qwen-Image and HiDream-I1, for the tests: each layer named as the trainer names it, its widths
read off a tiny pipeline's own modules (its safetensors headers), so a file fits that model
exactly as a real one fits the real model.

Where each layout comes from (the trainers' save code; diffusers' converters read the same):

- "kohya" (FLUX.2): musubi-tuner's networks/lora_flux_2.py over BFL's model
  (musubi_tuner/flux_2/flux2_models.py): `lora_unet_double_blocks_0_img_attn_qkv` with
  `.lora_down.weight`, `.lora_up.weight` and `.alpha`; norms and modulations left out.
- "ai-toolkit": ai-toolkit saves peft's lora_A / lora_B without alphas and renames `transformer.`
  to `diffusion_model.` (convert_lora_weights_before_save). Its FLUX.2 model is BFL's
  (extensions_built_in/diffusion_models/flux2/src/model.py: `double_blocks.0.img_attn.qkv`);
  Z-Image, Qwen-Image and HiDream are the diffusers transformers, under their own names.
- "musubi" (Z-Image, Qwen-Image): musubi-tuner's `lora_unet_` + its models' module names, which
  are diffusers' with "_" for "." (networks/lora_zimage.py leaves the refiners and adaLN out;
  networks/lora_qwen_image.py trains every linear of a block).
- "musubi-comfy" (Z-Image): musubi-tuner's convert_z_image_lora_to_comfy.py, Z-Image's original
  `attention_qkv` (q, k and v fused) and `attention_out` under the same `lora_unet_` prefix.
- "onetrainer" (HiDream): diffusers' names under `transformer.` with kohya's lora_down / lora_up /
  alpha tensors (as ComfyUI's issue 7792 / OneTrainer's issue 842 list them).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ..lora_layout import ModelLayout, model_layout

Shapes = dict[str, tuple[int, ...]]
# A layer of the file: its name as the trainer writes it and the diffusers modules it covers.
Layers = list[tuple[str, tuple[str, ...]]]

# FLUX.2's double and single blocks in BFL's names -> diffusers' Flux2Transformer2DModel modules.
FLUX2_BLOCKS = [
    ("double_blocks.0.img_attn.qkv", ("transformer_blocks.0.attn.to_q", "to_k", "to_v")),
    ("double_blocks.0.img_attn.proj", ("transformer_blocks.0.attn.to_out.0",)),
    ("double_blocks.0.img_mlp.0", ("transformer_blocks.0.ff.linear_in",)),
    ("double_blocks.0.img_mlp.2", ("transformer_blocks.0.ff.linear_out",)),
    ("double_blocks.0.txt_attn.qkv", ("transformer_blocks.0.attn.add_q_proj", "add_k_proj", "add_v_proj")),
    ("double_blocks.0.txt_attn.proj", ("transformer_blocks.0.attn.to_add_out",)),
    ("double_blocks.0.txt_mlp.0", ("transformer_blocks.0.ff_context.linear_in",)),
    ("double_blocks.0.txt_mlp.2", ("transformer_blocks.0.ff_context.linear_out",)),
    ("single_blocks.0.linear1", ("single_transformer_blocks.0.attn.to_qkv_mlp_proj",)),
    ("single_blocks.0.linear2", ("single_transformer_blocks.0.attn.to_out",)),
]
ZIMAGE_BLOCK = ["attention.to_q", "attention.to_k", "attention.to_v", "attention.to_out.0"]
ZIMAGE_BLOCK += ["feed_forward.w1", "feed_forward.w2", "feed_forward.w3"]
QWEN_BLOCK = [f"attn.{m}" for m in ("to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj")]
QWEN_BLOCK += ["attn.to_out.0", "attn.to_add_out", "img_mlp.net.0.proj", "img_mlp.net.2"]
QWEN_BLOCK += ["txt_mlp.net.0.proj", "txt_mlp.net.2", "img_mod.1", "txt_mod.1"]
HIDREAM_DOUBLE = [f"attn1.{m}" for m in ("to_q", "to_k", "to_v", "to_out", "to_q_t", "to_k_t", "to_v_t", "to_out_t")]
HIDREAM_DOUBLE += ["ff_i.shared_experts.w1", "ff_i.shared_experts.w2", "ff_i.experts.0.w3", "ff_t.w1"]
HIDREAM_SINGLE = ["attn1.to_q", "attn1.to_out", "ff_i.shared_experts.w2", "ff_i.experts.1.w1"]


def _expand(modules: tuple[str, ...]) -> tuple[str, ...]:
    """("blocks.0.attn.to_q", "to_k") -> both with the first one's parent."""
    parent = modules[0].rsplit(".", 1)[0]
    return (modules[0], *(f"{parent}.{m}" for m in modules[1:]))


def _one_each(modules: list[str]) -> Layers:
    return [(m, (m,)) for m in modules]


def _flux2(model: ModelLayout) -> Layers:
    return [(name, _expand(modules)) for name, modules in FLUX2_BLOCKS]


def _zimage(model: ModelLayout) -> Layers:
    return _one_each([f"layers.0.{m}" for m in ZIMAGE_BLOCK])


def _zimage_original(model: ModelLayout) -> Layers:
    fused = [("layers.0.attention.qkv", _expand(("layers.0.attention.to_q", "to_k", "to_v")))]
    fused += [("layers.0.attention.out", ("layers.0.attention.to_out.0",))]
    return fused + _one_each([f"layers.0.{m}" for m in ZIMAGE_BLOCK if m.startswith("feed_forward")])


def _qwen(model: ModelLayout) -> Layers:
    return _one_each([f"transformer_blocks.0.{m}" for m in QWEN_BLOCK])


def _hidream(model: ModelLayout) -> Layers:
    double = [f"double_stream_blocks.0.block.{m}" for m in HIDREAM_DOUBLE]
    return _one_each(double + [f"single_stream_blocks.0.block.{m}" for m in HIDREAM_SINGLE])


def _kohya(name: str) -> str:
    return "lora_unet_" + name.replace(".", "_")


def _ai_toolkit(name: str) -> str:
    return "diffusion_model." + name


# (family, layout) -> (the layers, how a layer's name is spelled, the down / up / alpha suffixes or None)
Suffixes = tuple[str, str, str | None]
KOHYA: Suffixes = (".lora_down.weight", ".lora_up.weight", ".alpha")
PEFT: Suffixes = (".lora_A.weight", ".lora_B.weight", None)
LAYOUTS: dict[tuple[str, str], tuple[Callable[[ModelLayout], Layers], Callable[[str], str], Suffixes]] = {
    ("flux2", "kohya"): (_flux2, _kohya, KOHYA),
    ("flux2", "ai-toolkit"): (_flux2, _ai_toolkit, PEFT),
    ("zimage", "musubi"): (_zimage, _kohya, KOHYA),
    ("zimage", "musubi-comfy"): (_zimage_original, _kohya, KOHYA),
    ("zimage", "ai-toolkit"): (_zimage, _ai_toolkit, PEFT),
    ("qwenimage", "musubi"): (_qwen, _kohya, KOHYA),
    ("qwenimage", "ai-toolkit"): (_qwen, _ai_toolkit, PEFT),
    ("hidream", "ai-toolkit"): (_hidream, _ai_toolkit, PEFT),
    ("hidream", "onetrainer"): (_hidream, lambda name: "transformer." + name, KOHYA),
}


def foreign_shapes(family: str, layout: str, model_dir: Path, *, rank: int = 2) -> Shapes:
    """Tensor name -> shape of a LoRA in `layout` on the tiny model in `model_dir`; a layer over
    several modules (a fused qkv) is as wide as they are together."""
    model = model_layout(model_dir)
    layers, spell, (down, up, alpha) = LAYOUTS[(family, layout)]
    shapes: Shapes = {}
    for name, modules in layers(model):
        widths = [w for m in modules if (w := model.weight(f"transformer.{m}")) is not None]
        if len(widths) != len(modules):
            raise ValueError(f"{model_dir.name} has no module {modules} for {name}")
        base = spell(name)
        shapes[base + down] = (rank, widths[0][1])
        shapes[base + up] = (sum(w[0] for w in widths), rank)
        if alpha:
            shapes[base + alpha] = ()
    return shapes


def write_lora(path: Path, shapes: Shapes, *, seed: int = 0, alpha: float = 1.0, strength: float = 8.0) -> Path:
    """Random tensors of `shapes` (`.alpha` entries are scalars, `alpha`); up weights large enough
    that a tiny model's image visibly changes."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, shape in shapes.items():
        if name.endswith(".alpha"):
            tensors[name] = torch.tensor(alpha)
        else:
            scale = strength if any(u in name for u in (".lora_up.", ".lora_B.")) else 1.0
            tensors[name] = torch.randn(*shape, generator=generator) * scale
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path
