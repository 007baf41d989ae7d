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

# Key shapes of LoRAs trained outside diffusers, which the engine converts on load.
FOREIGN_FORMATS = [
    (re.compile(r"^lora_unet_(double|single)_blocks_"), "flux", "kohya"),
    (
        re.compile(r"^(diffusion_model\.)?(double|single)_blocks\.\d+\.(img|txt)?_?(attn|mlp|mod|linear)"),
        "flux",
        "ai-toolkit",
    ),
    (re.compile(r"^(diffusion_model\.)?(double|single)_blocks\.\d+\.processor\."), "flux", "xlabs"),
    # SDXL has a second text encoder and up to ten transformer blocks per attention, and kohya
    # trains it on Stability's UNet (input_blocks...); SD 1.x has none of these.
    (
        re.compile(r"^lora_(te2_|unet_(input_blocks|middle_block|output_blocks)_|unet_.*transformer_blocks_[1-9])"),
        "sdxl",
        "kohya",
    ),
    (re.compile(r"^lora_(unet|te1?)_"), "sd1", "kohya"),
]
# Module names that only one family's denoiser has (diffusers / peft format).
FAMILY_MARKERS = [
    (re.compile(r"(^|\.)(down_blocks|up_blocks|mid_block)\."), {"sdxl"}),
    (re.compile(r"(^|\.)(double_stream_blocks|single_stream_blocks)\."), {"hidream"}),
    (re.compile(r"(^|\.)(noise_refiner|context_refiner|layers)\.\d+\.attention\."), {"zimage"}),
    (re.compile(r"(^|\.)single_transformer_blocks\.\d+\.attn\.to_qkv_mlp_proj"), {"flux2", "flux2dev"}),
    # Chroma1 is FLUX.1's architecture retrained: the same layer names.
    (re.compile(r"(^|\.)single_transformer_blocks\.\d+\.(attn\.to_[qkv]|proj_mlp|proj_out|norm)"), {"flux", "chroma"}),
    (re.compile(r"(^|\.)transformer_blocks\.\d+\.(img_mlp|txt_mlp|img_mod|txt_mod)"), {"qwenimage"}),
    (re.compile(r"(^|\.)transformer_blocks\.\d+\."), {"flux", "flux2", "flux2dev", "sd3", "qwenimage", "chroma"}),
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


def detect(keys: list[str]) -> tuple[set[str], str]:
    """The families a LoRA can be for, and its format ("diffusers", "kohya", ...)."""
    for pattern, family, fmt in FOREIGN_FORMATS:
        if any(pattern.search(k) for k in keys):
            return {family}, fmt
    names = [_strip(k) for k in keys if ".lora" in k or "lora_" in k]
    if not names:
        raise LoraError("No LoRA weights in the file (no lora_A / lora_B / lora_down tensors).")
    for pattern, families in FAMILY_MARKERS:
        if any(pattern.search(n) for n in names):
            return set(families), "diffusers"
    raise LoraError("The LoRA's layer names match no model family the studio runs.")
