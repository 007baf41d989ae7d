"""Check a GGUF transformer file before an entry names it: whole, of a quantization diffusers
loads, and of the entry's family. The format ComfyUI users have for FLUX.1, FLUX.2, Qwen-Image,
Z-Image and HiDream (city96's conversions), read with the `gguf` package's reader: its tensor table
and metadata only, memory-mapped, with no torch and no weights read.
https://huggingface.co/docs/diffusers/quantization/gguf
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from gguf import GGUFReader

from .lora_files import FAMILY_MARKERS

# The block types diffusers dequantizes (diffusers/quantizers/gguf/utils.py), and the plain ones.
SUPPORTED = {"F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K", "Q5_1", "Q5_0", "Q4_K", "Q4_1", "Q4_0", "Q3_K", "Q2_K"}
SUPPORTED |= {"IQ4_NL", "IQ4_XS"}
# Checkpoints in their authors' own layout, which diffusers converts on load.
ORIGINAL_LAYOUTS = [
    (re.compile(r"^(model\.diffusion_model\.)?double_blocks\.\d+\.img_attn\."), {"flux"}),
    (re.compile(r"^(model\.diffusion_model\.)?joint_blocks\.\d+\."), {"sd3"}),
    (re.compile(r"^(model\.diffusion_model\.)?(input_blocks|middle_block|output_blocks)\.\d+"), {"sdxl"}),
]


class GgufError(ValueError):
    pass


@dataclass(frozen=True)
class GgufInfo:
    families: set[str]
    quant_types: Counter[str]  # block type -> tensors of it
    params: int
    bytes: int

    @property
    def main_type(self) -> str:
        """The type of most of its weights: what ComfyUI's file names say (Q4_K, Q8_0...)."""
        quantized = Counter({k: v for k, v in self.quant_types.items() if k not in ("F32", "F16", "BF16")})
        return (quantized or self.quant_types).most_common(1)[0][0]


def read_gguf(path: Path) -> GgufInfo:
    """What the file holds; GgufError naming what is wrong with it. A model's save reads it
    three times (the file check, the plan's components, the plan's precisions): the header is
    read once per version of the file (its size and modification time)."""
    if path.suffix.lower() != ".gguf":
        raise GgufError(f"{path.name} is not a .gguf file.")
    try:
        stat = path.stat()
    except OSError as exc:
        raise GgufError(f"{path.name} is not a readable GGUF file ({exc.__class__.__name__}: {exc}).") from None
    return _read(path, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=16)
def _read(path: Path, size: int, mtime_ns: int) -> GgufInfo:
    try:
        reader = GGUFReader(path)
        tensors = [(t.name, t.tensor_type.name, int(t.n_elements), int(t.n_bytes)) for t in reader.tensors]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:  # a truncated or foreign file
        raise GgufError(f"{path.name} is not a readable GGUF file ({exc.__class__.__name__}: {exc}).") from None
    if not tensors:
        raise GgufError(f"{path.name} holds no tensors.")
    types = Counter(kind for _, kind, _, _ in tensors)
    if unsupported := sorted(set(types) - SUPPORTED):
        raise GgufError(
            f"{path.name} has weights in {', '.join(unsupported)}, which diffusers cannot load; "
            f"use a file in {', '.join(sorted(SUPPORTED - {'F32', 'F16', 'BF16'}))}."
        )
    names = [name for name, _, _, _ in tensors]
    return GgufInfo(families_of(names), types, sum(n for _, _, n, _ in tensors), sum(b for _, _, _, b in tensors))


def families_of(names: list[str]) -> set[str]:
    for pattern, families in ORIGINAL_LAYOUTS:
        if any(pattern.search(n) for n in names):
            return set(families)
    for pattern, families in FAMILY_MARKERS:
        if any(pattern.search(n) for n in names):
            return set(families)
    return set()


def check_gguf(path: Path, family: str, label: str) -> GgufInfo:
    """The file's contents, if it is a transformer of `family`; GgufError saying why not."""
    info = read_gguf(path)
    if family not in info.families:
        found = ", ".join(sorted(info.families)) or "no family the studio runs"
        raise GgufError(f"{path.name} is a transformer of {found}, not of {label}.")
    return info
