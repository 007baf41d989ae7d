"""A model's parts and what each weighs: read from a diffusers folder's model_index.json and
each component's safetensors headers (tensor shapes and dtypes; no weights read), or given by a
script that built the published architecture on the meta device."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..json_files import read_config
from ..lora_files import DTYPE_BYTES, LoraError, read_header

# Text encoders whose activations overflow in fp16 (T5 v1.1 was trained in bf16): on a card
# without bf16 they compute in fp32 or carry int8 weights, never fp16.
# https://github.com/huggingface/transformers/issues/14189
FP16_OVERFLOWS = {"T5EncoderModel", "UMT5EncoderModel"}


@dataclass(frozen=True)
class Component:
    name: str  # as model_index.json names it: transformer, unet, text_encoder_2, vae...
    klass: str  # its class, e.g. FluxTransformer2DModel
    params: int
    # Parameters in the weights of linear layers: what weight quantization (int8, fp8, nf4,
    # GGUF) reaches; norms, biases, embeddings and convolutions stay in the compute dtype.
    linear_params: int
    width: int = 0  # a denoiser's hidden width, for its activations
    blocks: int = 0  # a denoiser's transformer blocks, for the activations training keeps
    # Saved quantized (its config.json has a quantization_config): how ("int8 (torchao)",
    # "nf4 (bitsandbytes)"...), and the bytes its weights take as stored. It loads as it is.
    stored: str = ""
    stored_bytes: int = 0

    @property
    def role(self) -> str:
        if self.name in ("transformer", "unet", "prior"):
            return "denoiser"
        if self.name.startswith("text_encoder"):
            return "encoder"
        if self.name == "vae":
            return "vae"
        return "other"

    @property
    def overflows_in_fp16(self) -> bool:
        return self.klass in FP16_OVERFLOWS


class ComponentError(ValueError):
    pass


def folder_components(folder: Path) -> list[Component]:
    """Every weighed component of a diffusers folder (tokenizers and schedulers weigh nothing)."""
    index = read_config(folder / "model_index.json")
    components = []
    for name, value in index.items():
        if name.startswith("_") or not (isinstance(value, list) and len(value) == 2 and value[1]):
            continue
        files = sorted((folder / name).glob("*.safetensors"))
        if not files:
            continue  # a tokenizer, a scheduler, or weights in another format
        components.append(_weighed(name, str(value[1]), files, _config(folder / name)))
    components = [_as_stored(c, _config(folder / c.name)) for c in components]
    if not components:
        raise ComponentError(f"{folder.name} holds no safetensors weights to plan for.")
    return components


def _config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    return read_config(path) if path.is_file() else {}


def _weighed(name: str, klass: str, files: list[Path], config: dict[str, Any]) -> Component:
    params = linear = stored = 0
    for path in files:
        try:
            header = read_header(path)
        except LoraError as exc:
            raise ComponentError(f"{name}: {exc}") from None
        for key, info in header.items():
            shape = info.get("shape")
            if not isinstance(shape, list):
                continue
            count = math.prod(int(n) for n in shape)
            params += count
            stored += count * DTYPE_BYTES.get(str(info.get("dtype")), 2)
            if is_linear_weight(key, shape):
                linear += count
    width, blocks = hidden_width(config), block_count(config)
    return Component(name, klass, params, linear, width=width, blocks=blocks, stored_bytes=stored)


def _as_stored(component: Component, config: dict[str, Any]) -> Component:
    quantization = config.get("quantization_config")
    if not isinstance(quantization, dict):
        return component
    return replace(component, stored=stored_label(quantization))


def stored_label(quantization: dict[str, Any]) -> str:
    """How a saved component is quantized, from its config's quantization_config."""
    method = str(quantization.get("quant_method", "unknown"))
    if method == "bitsandbytes":
        four_bit = quantization.get("load_in_4bit")
        return f"{quantization.get('bnb_4bit_quant_type', 'nf4') if four_bit else 'int8'} (bitsandbytes)"
    if method == "torchao":
        kind = quantization.get("quant_type")
        name = str((kind.get("default") or {}).get("_type", "")) if isinstance(kind, dict) else str(kind)
        return f"{'fp8' if 'Float8' in name else 'int8' if 'Int8' in name else name} (torchao)"
    return method


def is_linear_weight(key: str, shape: list[Any]) -> bool:
    """A 2-D `.weight` that is not an embedding table: a linear layer's, which quantizes."""
    return len(shape) == 2 and key.endswith(".weight") and "embed" not in key.rsplit(".", 2)[-2]


def hidden_width(config: dict[str, Any]) -> int:
    """A denoiser's width from its config: heads x head size for the DiTs, the widest block for a UNet."""
    heads, head_dim = config.get("num_attention_heads"), config.get("attention_head_dim")
    if isinstance(heads, int) and isinstance(head_dim, int):
        return heads * head_dim
    for key in ("dim", "hidden_size", "inner_dim"):
        if isinstance(config.get(key), int):
            return int(config[key])
    channels = config.get("block_out_channels")
    if isinstance(channels, list) and channels and all(isinstance(c, int) for c in channels):
        return max(channels)
    return 0


# Block counts as the DiTs' configs name them (FLUX: double and single blocks; Z-Image: its main
# and refiner layers); a UNet names none.
BLOCK_KEYS = ("num_layers", "num_single_layers", "n_layers", "n_refiner_layers")


def block_count(config: dict[str, Any]) -> int:
    """A DiT's transformer blocks from its config, 0 where it does not say (a UNet)."""
    return sum(int(value) for key in BLOCK_KEYS if isinstance(value := config.get(key), int))
