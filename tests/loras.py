"""LoRA files for tests: trained nowhere, just random adapters on a tiny pipeline's denoiser,
in diffusers' format or in the layouts of the trainers people use (kohya, ai-toolkit, XLabs)."""

import json
import struct
from pathlib import Path

import torch


def write_safetensors_header(path: Path, names: list[str]) -> Path:
    """A well-formed file of 4x4 zero tensors: enough for the format checks."""
    header, offset = {}, 0
    for name in names:
        header[name] = {"dtype": "F32", "shape": [4, 4], "data_offsets": [offset, offset + 64]}
        offset += 64
    return write_raw(path, header, bytes(offset))


def write_raw(path: Path, header: dict, data: bytes) -> Path:
    """A .safetensors file exactly as given, however wrong its table is."""
    raw = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def write_lora(path: Path, shapes: dict[str, tuple[int, ...]], seed: int = 0) -> Path:
    """Random tensors of the given shapes (`*.alpha` entries are scalars equal to the rank)."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    tensors = {}
    for name, shape in shapes.items():
        if name.endswith(".alpha"):
            tensors[name] = torch.tensor(float(shape[0]))
        else:
            # Up weights large enough that the tiny models' images visibly change.
            tensors[name] = torch.randn(*shape) * (8.0 if ("up" in name or "lora_B" in name) else 1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def pair(base: str, down: str, up: str, inputs: int, outputs: int, rank: int = 2) -> dict[str, tuple[int, ...]]:
    return {f"{base}{down}": (rank, inputs), f"{base}{up}": (outputs, rank)}


# The tiny FLUX (generation.devtools.tiny.build_tiny_flux): 32 wide, its MLPs 4 x 32.
FLUX_WIDTH, FLUX_MLP = 32, 128


def kohya_flux(width: int = FLUX_WIDTH, mlp: int = FLUX_MLP, rank: int = 2) -> dict[str, tuple[int, ...]]:
    """kohya's sd-scripts layout: BFL module names with "_", lora_down / lora_up / alpha, fused qkv."""
    shapes: dict[str, tuple[int, ...]] = {}
    for base, inputs, outputs in [
        ("lora_unet_double_blocks_0_img_attn_qkv", width, 3 * width),
        ("lora_unet_double_blocks_0_txt_attn_proj", width, width),
        ("lora_unet_single_blocks_0_linear1", width, 3 * width + mlp),
        ("lora_unet_single_blocks_0_linear2", width + mlp, width),
    ]:
        shapes |= pair(base, ".lora_down.weight", ".lora_up.weight", inputs, outputs, rank)
        shapes[f"{base}.alpha"] = (rank,)
    return shapes


def ai_toolkit_flux(width: int = FLUX_WIDTH, mlp: int = FLUX_MLP, rank: int = 2) -> dict[str, tuple[int, ...]]:
    """BFL module names with dots and peft's lora_A / lora_B (the `diffusion_model.` checkpoints)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for base, inputs, outputs in [
        ("diffusion_model.double_blocks.0.img_attn.qkv", width, 3 * width),
        ("diffusion_model.double_blocks.0.img_mlp.0", width, mlp),
        ("diffusion_model.single_blocks.0.linear1", width, 3 * width + mlp),
    ]:
        shapes |= pair(base, ".lora_A.weight", ".lora_B.weight", inputs, outputs, rank)
    return shapes


def xlabs_flux(width: int = FLUX_WIDTH, rank: int = 2) -> dict[str, tuple[int, ...]]:
    """XLabs' attention-processor layout."""
    shapes: dict[str, tuple[int, ...]] = {}
    for base, inputs, outputs in [
        ("double_blocks.0.processor.qkv_lora1", width, 3 * width),
        ("double_blocks.0.processor.proj_lora1", width, width),
        ("double_blocks.0.processor.qkv_lora2", width, 3 * width),
    ]:
        shapes |= pair(base, ".down.weight", ".up.weight", inputs, outputs, rank)
    return shapes


# The tiny SDXL (build_tiny_sdxl): blocks 16 and 32 wide, one layer per block, CLIPs 32 wide.
def kohya_sdxl(*, sgm: bool, width: int = 32, rank: int = 2) -> dict[str, tuple[int, ...]]:
    """kohya's SDXL layout, in Stability's block names (sgm) or diffusers', with both text encoders."""
    block = "input_blocks_3_1" if sgm else "down_blocks_1_attentions_0"
    shapes: dict[str, tuple[int, ...]] = {}
    for base, inputs, outputs in [
        (f"lora_unet_{block}_transformer_blocks_0_attn1_to_q", width, width),
        (f"lora_unet_{block}_proj_in", width, width),
        # (diffusers cannot load text-encoder layers of attention alone: give an MLP layer too)
        ("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 32, 32),
        ("lora_te1_text_model_encoder_layers_0_mlp_fc1", 32, 64),
        ("lora_te2_text_model_encoder_layers_0_mlp_fc1", 32, 64),
    ]:
        shapes |= pair(base, ".lora_down.weight", ".lora_up.weight", inputs, outputs, rank)
        shapes[f"{base}.alpha"] = (rank,)
    return shapes
