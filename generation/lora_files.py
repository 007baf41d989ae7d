"""Check a LoRA file before it is attached: readable, in a format the engine loads, and made
for the family (and, where the model is on this machine, the exact shapes) it claims.

Pure Python: only the safetensors headers are read, never the tensors, so the web process
can run this when an admin saves a LoRA.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

MAX_HEADER = 100 * 2**20

# Key shapes of LoRAs trained outside diffusers, which diffusers converts on load.
FOREIGN_FORMATS = [
    (re.compile(r"^lora_unet_(double|single)_blocks_"), "flux", "kohya"),
    (
        re.compile(r"^(diffusion_model\.)?(double|single)_blocks\.\d+\.(img|txt)?_?(attn|mlp|mod|linear)"),
        "flux",
        "ai-toolkit",
    ),
    (re.compile(r"^(double|single)_blocks\.\d+\.processor\."), "flux", "xlabs"),
    # SDXL has a second text encoder and up to ten transformer blocks per attention; SD 1.x has neither.
    (re.compile(r"^lora_(te2_|unet_.*transformer_blocks_[1-9])"), "sdxl", "kohya"),
    (re.compile(r"^lora_(unet|te1?)_"), "sd1", "kohya"),
]
# Module names that only one family's denoiser has (diffusers / peft format).
FAMILY_MARKERS = [
    (re.compile(r"(^|\.)(down_blocks|up_blocks|mid_block)\."), {"sdxl"}),
    (re.compile(r"(^|\.)(double_stream_blocks|single_stream_blocks)\."), {"hidream"}),
    (re.compile(r"(^|\.)(noise_refiner|context_refiner|layers)\.\d+\.attention\."), {"zimage"}),
    (re.compile(r"(^|\.)single_transformer_blocks\.\d+\.attn\.to_qkv_mlp_proj"), {"flux2"}),
    (re.compile(r"(^|\.)single_transformer_blocks\.\d+\.(attn\.to_[qkv]|proj_mlp|proj_out|norm)"), {"flux"}),
    (re.compile(r"(^|\.)transformer_blocks\.\d+\.(img_mlp|txt_mlp|img_mod|txt_mod)"), {"qwenimage"}),
    (re.compile(r"(^|\.)transformer_blocks\.\d+\."), {"flux", "flux2", "sd3", "qwenimage"}),
]
PREFIXES = ("base_model.model.", "transformer.", "unet.")


class LoraError(ValueError):
    pass


def read_header(path: Path) -> dict[str, dict[str, object]]:
    """The tensor table of a .safetensors file: name -> dtype, shape, offsets."""
    try:
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if not 0 < length <= MAX_HEADER:
                raise ValueError("bad header length")
            header = json.loads(fh.read(length))
    except (OSError, struct.error, ValueError) as exc:
        raise LoraError(f"{path.name} is not a readable .safetensors file ({exc}).") from None
    header.pop("__metadata__", None)
    if not header:
        raise LoraError(f"{path.name} holds no tensors.")
    return header


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


def denoiser_shapes(model_dir: Path) -> dict[str, list[int]]:
    """Weight shapes of a diffusers folder's transformer (or UNet), read from its headers."""
    for sub in ("transformer", "unet"):
        folder = model_dir / sub
        if folder.is_dir():
            shapes: dict[str, list[int]] = {}
            for file in folder.glob("*.safetensors"):
                for name, info in read_header(file).items():
                    shapes[name] = list(info["shape"])  # type: ignore[call-overload]
            return shapes
    return {}


def check_shapes(header: dict[str, dict[str, object]], shapes: dict[str, list[int]]) -> None:
    """Every LoRA pair must sit on a linear layer of the model with matching width."""
    for key, info in header.items():
        match = re.match(r"(.+)\.lora_([AB])(\.default)?\.weight$", _strip(key))
        if not match:
            continue
        base = shapes.get(f"{match.group(1)}.weight")
        if base is None:
            raise LoraError(f"{match.group(1)} is not a layer of this model.")
        rank_shape = list(info["shape"])  # type: ignore[call-overload]
        wanted = base[1] if match.group(2) == "A" else base[0]
        got = rank_shape[1] if match.group(2) == "A" else rank_shape[0]
        if got != wanted:
            raise LoraError(f"{match.group(1)} is {wanted} wide in this model but {got} in the LoRA.")


def validate(path: Path, *, family: str, labels: dict[str, str], models: list[tuple[str, Path]]) -> str:
    """Raise LoraError with a message for an admin; return the LoRA's format when it fits.

    `models` are the (name, folder) of installed models of `family`: if there are any, the
    LoRA must fit at least one of them exactly.
    """
    header = read_header(path)
    families, fmt = detect(list(header))
    if family not in families:
        found = " or ".join(sorted(labels.get(f, f) for f in families))
        raise LoraError(f"This is a {found} LoRA ({fmt} format), not one for {labels.get(family, family)}.")
    if fmt != "diffusers" or not models:
        return fmt
    errors = []
    for name, folder in models:
        try:
            check_shapes(header, denoiser_shapes(folder))
            return fmt
        except LoraError as exc:
            errors.append(f"{name}: {exc}")
    raise LoraError("The LoRA does not fit the installed models: " + "; ".join(errors))
