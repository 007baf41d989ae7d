"""Check a LoRA file before it is attached: whole, in a format the engine loads, and made for
the family (and, where models of it are on this machine, the exact shapes) it claims.

Pure Python: the safetensors header and the file's size say everything checked here, so the
web process can run this when an admin saves a LoRA without loading torch or the tensors.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

MAX_HEADER = 100 * 2**20

# Bytes per element of each safetensors dtype (https://github.com/huggingface/safetensors#format).
DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "F8_E8M0": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}

# BFL's FLUX module names (double_blocks.0.img_attn.qkv, single_blocks.0.linear1) are FLUX.1's and
# FLUX.2's alike (klein and dev); `bfl_families` tells them apart by the names only one of them has
# and by the widths of their MLPs.
FLUX_BFL = frozenset({"flux", "flux2", "flux2dev"})
FLUX1 = frozenset({"flux"})
FLUX2 = frozenset({"flux2", "flux2dev"})
QWEN = frozenset({"qwenimage", "qwenimageedit"})  # Qwen-Image-Edit is Qwen-Image's transformer retrained

# Key shapes of LoRAs trained outside diffusers, which the engine (or diffusers) converts on load.
# Where each comes from:
# - kohya: `lora_unet_` + the original checkpoint's module names with "_" for "." + lora_down /
#   lora_up / alpha: sd-scripts' for SD and FLUX.1, musubi-tuner's for FLUX.2, whose model there is
#   BFL's own (musubi_tuner/flux_2/flux2_models.py, networks/lora_flux_2.py: double_blocks ...).
# - ai-toolkit: peft's lora_A / lora_B (no alpha) under `diffusion_model.` (the
#   convert_lora_weights_before_save of its FLUX.2, Z-Image, Qwen-Image and HiDream models: ComfyUI's
#   spelling). For FLUX.2 its model is BFL's (extensions_built_in/diffusion_models/flux2/src/model.py);
#   for Z-Image, Qwen-Image and HiDream it is the diffusers transformer, so the names are diffusers'
#   (see `detect`).
# - musubi: musubi-tuner's `lora_unet_` keys over its own Qwen-Image and Z-Image models, whose module
#   names are diffusers' (networks/lora_qwen_image.py, lora_zimage.py over qwen_image_model.py and
#   zimage_model.py); its convert_z_image_lora_to_comfy.py writes Z-Image's original fused
#   `attention_qkv` and `attention_out` under the same prefix. (Its "HiDream" is HiDream-O1, another
#   model: HiDream-I1 has no kohya-style layout.)
FOREIGN_FORMATS: list[tuple[re.Pattern[str], frozenset[str], str]] = [
    (re.compile(r"^lora_unet_(double|single)_blocks_"), FLUX_BFL, "kohya"),
    (
        re.compile(r"^(diffusion_model\.)?(double|single)_blocks\.\d+\.(img|txt)?_?(attn|mlp|mod|linear)"),
        FLUX_BFL,
        "ai-toolkit",
    ),
    (re.compile(r"^(diffusion_model\.)?(double|single)_blocks\.\d+\.processor\."), FLUX1, "xlabs"),
    # Before SDXL's pattern, which would take Qwen-Image's `lora_unet_transformer_blocks_1_...`.
    (re.compile(r"^lora_unet_transformer_blocks_\d+_(attn|img_mlp|txt_mlp|img_mod|txt_mod)_"), QWEN, "musubi"),
    (
        re.compile(r"^lora_unet_(layers|noise_refiner|context_refiner)_\d+_(attention|feed_forward|adaLN_modulation)_"),
        frozenset({"zimage"}),
        "musubi",
    ),
    # SDXL has a second text encoder and up to ten transformer blocks per attention, and kohya
    # trains it on Stability's UNet (input_blocks...); SD 1.x has none of these.
    (
        re.compile(r"^lora_(te2_|unet_(input_blocks|middle_block|output_blocks)_|unet_.*transformer_blocks_[1-9])"),
        frozenset({"sdxl"}),
        "kohya",
    ),
    (re.compile(r"^lora_(unet|te1?)_"), frozenset({"sd1"}), "kohya"),
]
# Module names that only one family's denoiser has (diffusers / peft format).
FAMILY_MARKERS = [
    (re.compile(r"(^|\.)(down_blocks|up_blocks|mid_block)\."), {"sdxl"}),
    (re.compile(r"(^|\.)(double_stream_blocks|single_stream_blocks)\."), {"hidream"}),
    (
        re.compile(r"(^|\.)(noise_refiner|context_refiner|layers)\.\d+\.(attention|feed_forward|adaLN_modulation)\."),
        {"zimage"},
    ),
    (re.compile(r"(^|\.)single_transformer_blocks\.\d+\.attn\.to_qkv_mlp_proj"), {"flux2", "flux2dev"}),
    # Chroma1 is FLUX.1's architecture retrained: the same layer names.
    (re.compile(r"(^|\.)single_transformer_blocks\.\d+\.(attn\.to_[qkv]|proj_mlp|proj_out|norm)"), {"flux", "chroma"}),
    (re.compile(r"(^|\.)transformer_blocks\.\d+\.(img_mlp|txt_mlp|img_mod|txt_mod)"), set(QWEN)),
    (
        re.compile(r"(^|\.)transformer_blocks\.\d+\."),
        {"flux", "flux2", "flux2dev", "sd3", "chroma", *QWEN},
    ),
]
PREFIXES = ("base_model.model.", "transformer.", "unet.")

Header = dict[str, dict[str, object]]


class LoraError(ValueError):
    pass


def read_header(path: Path) -> Header:
    """The tensor table of a .safetensors file (name -> dtype, shape, offsets), after checking
    that the file holds exactly the bytes the table describes: a truncated or padded file,
    overlapping tensors or a shape that does not match its bytes would only fail in a job."""
    header, data_bytes = _read_table(path)
    header.pop("__metadata__", None)
    if not header:
        raise LoraError(f"{path.name} holds no tensors.")
    verify_layout(header, data_bytes, name=path.name)
    return header


def _read_table(path: Path) -> tuple[Header, int]:
    """The raw header and how many bytes of tensor data follow it."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if not 0 < length <= min(MAX_HEADER, size - 8):
                raise ValueError("bad header length")
            header = json.loads(fh.read(length))
        if not isinstance(header, dict):
            raise ValueError("the header is not a table")
    except (OSError, struct.error, ValueError, RecursionError) as exc:  # RecursionError: a header nested deep
        raise LoraError(f"{path.name} is not a readable .safetensors file ({exc.__class__.__name__}: {exc}).") from None
    return header, size - 8 - length


def verify_layout(header: Header, data_bytes: int, *, name: str) -> None:
    """Every tensor's bytes lie inside the file, one after another with nothing between or after."""
    spans = sorted((_span(key, info), key) for key, info in header.items())
    end, previous = 0, ""
    for (begin, stop), key in spans:
        if begin < end:
            raise LoraError(f"{name} is damaged: tensor {key} overlaps tensor {previous}.")
        if begin > end:
            raise LoraError(f"{name} is damaged: {begin - end} stray bytes before tensor {key}.")
        if stop > data_bytes:
            raise LoraError(
                f"{name} is truncated: tensor {key} ends at byte {stop} of the data, but the file holds "
                f"{data_bytes} bytes of data: the file is cut short."
            )
        end, previous = stop, key
    if end != data_bytes:
        raise LoraError(f"{name} is damaged: {data_bytes - end} bytes after the last tensor.")


def _span(key: str, info: object) -> tuple[int, int]:
    """A tensor's (begin, end) in the data, checked against its dtype and shape."""
    if not isinstance(info, dict):
        raise LoraError(f"Tensor {key} has no dtype, shape and offsets in the header.")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        raise LoraError(f"Tensor {key} has a dtype the studio does not read ({dtype}).")
    if not (isinstance(shape, list) and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise LoraError(f"Tensor {key} has no valid shape ({shape}).")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(n, int) for n in offsets)):
        raise LoraError(f"Tensor {key} has no valid data offsets ({offsets}).")
    begin, end = offsets
    expected = math.prod(shape) * DTYPE_BYTES[str(dtype)]
    if not 0 <= begin <= end or end - begin != expected:
        raise LoraError(f"Tensor {key} ({dtype} {shape}) needs {expected} bytes, but its offsets give {end - begin}.")
    return begin, end


def tensor_shapes(path: Path) -> dict[str, list[int]]:
    """Name -> shape of a model's weights file, from its header only (not verified: not ours)."""
    header, _ = _read_table(path)
    tables = ((k, v) for k, v in header.items() if isinstance(v, dict))
    return {k: list(v["shape"]) for k, v in tables if isinstance(v.get("shape"), list)}  # type: ignore[call-overload]


def _strip(key: str) -> str:
    for prefix in PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def detect(keys: list[str], shapes: Mapping[str, list[int]] | None = None) -> tuple[set[str], str]:
    """The families a LoRA can be for, and its format ("diffusers", "kohya", ...). With the
    tensors' `shapes` (the header's), FLUX.1 and FLUX.2 files in BFL's names are told apart."""
    for pattern, families, fmt in FOREIGN_FORMATS:
        if any(pattern.search(k) for k in keys):
            return set(bfl_families(keys, shapes) if families is FLUX_BFL else families), fmt
    names = [_strip(k) for k in keys if ".lora" in k or "lora_" in k]
    if not names:
        raise LoraError("No LoRA weights in the file (no lora_A / lora_B / lora_down tensors).")
    for pattern, found in FAMILY_MARKERS:
        if any(pattern.search(n) for n in names):
            # diffusers' own module names under ComfyUI's `diffusion_model.`: ai-toolkit's save format
            return set(found), "ai-toolkit" if any(k.startswith("diffusion_model.") for k in keys) else "diffusers"
    raise LoraError("The LoRA's layer names match no model family the studio runs.")


def header_shapes(header: Header) -> dict[str, list[int]]:
    return {key: list(info["shape"]) for key, info in header.items()}  # type: ignore[call-overload]


# What tells FLUX.1 from FLUX.2 in BFL's names: modules only one of them has (FLUX.1's per-block
# modulations and pooled CLIP input; FLUX.2's shared modulations, as diffusers'
# convert_flux2_transformer_checkpoint_to_diffusers names them) ...
FLUX1_NAMES = re.compile(r"(img_mod|txt_mod|single_blocks[._]\d+[._]modulation)[._]lin|vector_in")
FLUX2_NAMES = re.compile(r"(double_stream_modulation_(img|txt)|single_stream_modulation)[._]lin")
# ... and the outputs per input of the layers that hold the MLP: FLUX.1's MLP is 4 times the model's
# width, FLUX.2's 3 times, with a gated (SwiGLU) input of twice that.
FLUX_MLP_RATIOS = [
    (re.compile(r"single_blocks[._]\d+[._]linear1\b"), {Fraction(7): FLUX1, Fraction(9): FLUX2}),  # q, k, v, MLP in
    (re.compile(r"single_blocks[._]\d+[._]linear2\b"), {Fraction(1, 5): FLUX1, Fraction(1, 4): FLUX2}),
    (re.compile(r"(img|txt)_mlp[._]0\b"), {Fraction(4): FLUX1, Fraction(6): FLUX2}),
    (re.compile(r"(img|txt)_mlp[._]2\b"), {Fraction(1, 4): FLUX1, Fraction(1, 3): FLUX2}),
]
DOWN_UP = ((".lora_down.weight", ".lora_up.weight"), (".lora_A.weight", ".lora_B.weight"))


def bfl_families(keys: list[str], shapes: Mapping[str, list[int]] | None) -> frozenset[str]:
    """FLUX.1, FLUX.2, or either, for a LoRA in BFL's module names."""
    votes = {FLUX1 for k in keys if FLUX1_NAMES.search(k)} | {FLUX2 for k in keys if FLUX2_NAMES.search(k)}
    for down, up in _down_up_pairs(keys) if shapes else ():
        ratio = _outputs_per_input(shapes[down], shapes[up])  # type: ignore[index]
        votes |= {
            by_ratio[ratio] for pattern, by_ratio in FLUX_MLP_RATIOS if pattern.search(down) and ratio in by_ratio
        }
    if len(votes) == 1:
        return votes.pop()
    # Attention layers alone fit either (FLUX.1 and FLUX.2 [klein] 4B are both 3072 wide), and a file
    # may contradict itself: with widths, the installed models' decide; by names alone it is FLUX.1's.
    return FLUX_BFL if shapes else FLUX1


def _outputs_per_input(down: list[int], up: list[int]) -> Fraction | None:
    return Fraction(up[0], down[1]) if len(down) >= 2 and down[1] and up else None


def _down_up_pairs(keys: list[str]) -> list[tuple[str, str]]:
    present = set(keys)
    pairs = []
    for key in keys:
        for down, up in DOWN_UP:
            if key.endswith(down) and key[: -len(down)] + up in present:
                pairs.append((key, key[: -len(down)] + up))
    return pairs
