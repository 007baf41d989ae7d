"""A pipeline's denoiser written as a GGUF file, as city96's converter writes ComfyUI's: each
linear weight in ggml blocks (Q8_0 by default), the rest in F32. Keys stay diffusers' own, which
diffusers loads without converting (a published file's original keys it converts on load)."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file


def build_tiny_gguf(pipeline: Path, out: Path, *, qtype: str = "Q8_0", arch: str = "flux") -> Path:
    index = json.loads((pipeline / "model_index.json").read_text())
    name = "unet" if "unet" in index else "transformer"
    weights: dict[str, np.ndarray] = {}
    for path in sorted((pipeline / name).glob("*.safetensors")):
        weights |= load_file(path)
    kind = gguf.GGMLQuantizationType[qtype]
    block, _ = gguf.GGML_QUANT_SIZES[kind]
    writer = gguf.GGUFWriter(str(out), arch=arch)
    for key, tensor in weights.items():
        tensor = tensor.astype(np.float32)
        if tensor.ndim == 2 and tensor.shape[-1] % block == 0:  # ggml blocks run along the last axis
            writer.add_tensor(key, gguf.quants.quantize(tensor, kind), raw_dtype=kind)
        else:
            writer.add_tensor(key, tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
