"""Where each layer of a LoRA file lands in a model, and whether its widths fit there.

A LoRA trained outside diffusers names the original checkpoint's modules (kohya and
ai-toolkit: BFL's `double_blocks.0.img_attn.qkv`; XLabs: attention processors; kohya SDXL:
Stability's `input_blocks.4.1`), and some of its layers cover several diffusers modules at
once (one fused qkv projection -> to_q, to_k, to_v). `plan` maps every layer of a file to the
modules of one model and `check_fits` compares the widths, all from safetensors headers and
config files, so the web process can refuse a LoRA that would fail in every job.

The split widths come from the model itself (its modules' shapes), never from FLUX.1's sizes:
the engine converts kohya and ai-toolkit FLUX.1 and FLUX.2 files with the same plan
(`generation/engine/loras.py`), because diffusers' own converters assume 3072-wide layers
(FLUX.1) or drop the layers they do not know (FLUX.2). The files of Z-Image, Qwen-Image and
HiDream name diffusers' modules (ai-toolkit, musubi-tuner), which diffusers converts itself (but
for HiDream's with kohya-style alphas, which it refuses): their plans map each layer to its
module, to check it is there and as wide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .json_files import read_config
from .lora_files import Header, LoraError, detect, header_shapes, read_header, tensor_shapes

COMPONENTS = ("transformer", "unet", "text_encoder", "text_encoder_2")

# FLUX's original (BFL) module names, with "_" for ".", -> diffusers' FluxTransformer2DModel.
# Mirrors diffusers.loaders.lora_conversion_utils._convert_kohya_flux_lora_to_diffusers.
FLUX_DOUBLE = {
    "img_attn_proj": ("attn.to_out.0",),
    "img_attn_qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "img_mlp_0": ("ff.net.0.proj",),
    "img_mlp_2": ("ff.net.2",),
    "img_mod_lin": ("norm1.linear",),
    "txt_attn_proj": ("attn.to_add_out",),
    "txt_attn_qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
    "txt_mlp_0": ("ff_context.net.0.proj",),
    "txt_mlp_2": ("ff_context.net.2",),
    "txt_mod_lin": ("norm1_context.linear",),
}
FLUX_SINGLE = {
    "linear1": ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"),
    "linear2": ("proj_out",),
    "modulation_lin": ("norm.linear",),
}
FLUX_GLOBAL = {
    "img_in": "x_embedder",
    "txt_in": "context_embedder",
    "time_in_in_layer": "time_text_embed.timestep_embedder.linear_1",
    "time_in_out_layer": "time_text_embed.timestep_embedder.linear_2",
    "vector_in_in_layer": "time_text_embed.text_embedder.linear_1",
    "vector_in_out_layer": "time_text_embed.text_embedder.linear_2",
    "guidance_in_in_layer": "time_text_embed.guidance_embedder.linear_1",
    "guidance_in_out_layer": "time_text_embed.guidance_embedder.linear_2",
    "final_layer_linear": "proj_out",
    "final_layer_adaLN_modulation_1": "norm_out.linear",
}
# FLUX.2's BFL names (klein and dev: one DiT) -> diffusers' Flux2Transformer2DModel, as diffusers'
# convert_flux2_transformer_checkpoint_to_diffusers maps the checkpoint: no per-block modulation,
# a gated MLP in one linear_in, and a single block's q, k, v and MLP input in one fused projection.
FLUX2_DOUBLE = {
    "img_attn_proj": ("attn.to_out.0",),
    "img_attn_qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "img_mlp_0": ("ff.linear_in",),
    "img_mlp_2": ("ff.linear_out",),
    "txt_attn_proj": ("attn.to_add_out",),
    "txt_attn_qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
    "txt_mlp_0": ("ff_context.linear_in",),
    "txt_mlp_2": ("ff_context.linear_out",),
}
FLUX2_SINGLE: dict[str, tuple[str, ...]] = {"linear1": ("attn.to_qkv_mlp_proj",), "linear2": ("attn.to_out",)}
FLUX2_GLOBAL = {
    "img_in": "x_embedder",
    "txt_in": "context_embedder",
    "time_in_in_layer": "time_guidance_embed.timestep_embedder.linear_1",
    "time_in_out_layer": "time_guidance_embed.timestep_embedder.linear_2",
    "guidance_in_in_layer": "time_guidance_embed.guidance_embedder.linear_1",
    "guidance_in_out_layer": "time_guidance_embed.guidance_embedder.linear_2",
    "double_stream_modulation_img_lin": "double_stream_modulation_img.linear",
    "double_stream_modulation_txt_lin": "double_stream_modulation_txt.linear",
    "single_stream_modulation_lin": "single_stream_modulation.linear",
    "final_layer_linear": "proj_out",
    "final_layer_adaLN_modulation_1": "norm_out.linear",
}
Modules = dict[str, tuple[str, ...]]
BFL_TABLES: dict[str, tuple[Modules, Modules, dict[str, str]]] = {
    "FluxTransformer2DModel": (FLUX_DOUBLE, FLUX_SINGLE, FLUX_GLOBAL),
    "Flux2Transformer2DModel": (FLUX2_DOUBLE, FLUX2_SINGLE, FLUX2_GLOBAL),
}
# Z-Image's original attention (ComfyUI's, as musubi-tuner's convert_z_image_lora_to_comfy.py writes
# it) -> diffusers' ZImageTransformer2DModel, in kohya's "_" spelling. diffusers splits the fused
# qkv in three equal parts: Z-Image's q, k and v are equally wide (as many key/value heads as heads).
ZIMAGE_ORIGINAL = {
    "attention_qkv": ("attention_to_q", "attention_to_k", "attention_to_v"),
    "attention_out": ("attention_to_out_0",),
}
XLABS = {
    "double": {
        "qkv_lora1": ("attn.to_q", "attn.to_k", "attn.to_v"),
        "qkv_lora2": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
        "proj_lora1": ("attn.to_out.0",),
        "proj_lora2": ("attn.to_add_out",),
    },
    "single": {"qkv_lora": ("attn.to_q", "attn.to_k", "attn.to_v"), "proj_lora": ("proj_out",)},
}
# kohya's text encoder prefixes (SDXL has two CLIPs; FLUX's kohya files only train the first).
KOHYA_TEXT = {"lora_te_": "text_encoder", "lora_te1_": "text_encoder", "lora_te2_": "text_encoder_2"}


@dataclass(frozen=True)
class Layer:
    """One LoRA layer of the file: its down (A) and up (B) tensors and the modules it adapts.

    With several targets, `up`'s rows are split between them in order, by each module's width."""

    name: str
    down: str
    up: str
    alpha: str | None
    targets: tuple[str, ...]
    # BFL's final adaLN modulation stores (shift, scale); diffusers' norm_out stores (scale, shift).
    swap_halves: bool = False


@dataclass
class ModelLayout:
    """The weight shapes of a model's components, by parameter name, and its denoiser's config."""

    name: str
    denoiser: str
    shapes: dict[str, dict[str, list[int]]]
    config: dict[str, object] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        """The denoiser's class (`_class_name` of its config): FLUX.1's and FLUX.2's share BFL's names."""
        return str(self.config.get("_class_name", ""))

    def weight(self, module: str) -> list[int] | None:
        component, _, name = module.partition(".")
        shapes = self.shapes.get(component, {})
        # transformers may save a CLIP text model without its `text_model.` prefix.
        for candidate in (name, name.removeprefix("text_model.")):
            if f"{candidate}.weight" in shapes:
                return shapes[f"{candidate}.weight"]
        return None

    def modules_by_flat_name(self, component: str) -> dict[str, str]:
        """kohya writes module names with "_" for "."; this maps them back (CLIPs as loaded: `text_model.`...)."""
        found = {}
        for key in self.shapes.get(component, {}):
            if key.endswith(".weight"):
                name = key.removesuffix(".weight")
                if component.startswith("text_encoder") and name.startswith("encoder.layers."):
                    name = "text_model." + name
                found[name.replace(".", "_")] = name
        return found


def model_layout(folder: Path, name: str = "the model") -> ModelLayout:
    shapes: dict[str, dict[str, list[int]]] = {}
    for component in COMPONENTS:
        for file in sorted((folder / component).glob("*.safetensors")):
            shapes.setdefault(component, {}).update(tensor_shapes(file))
    denoiser = "unet" if (folder / "unet").is_dir() else "transformer"
    try:
        config = read_config(folder / denoiser / "config.json")
    except (OSError, ValueError):
        config = {}
    return ModelLayout(name=name, denoiser=denoiser, shapes=shapes, config=config)


def plan(keys: list[str], fmt: str, model: ModelLayout) -> list[Layer]:
    """Every LoRA layer of a file in `model`'s layout; a tensor that lands nowhere is an error."""
    layers = _PLANNERS.get(fmt, _plan_diffusers)(keys, model)
    if not layers:
        raise LoraError("The file has no LoRA layer pairs (down/up or lora_A/lora_B).")
    if fmt != "diffusers":  # diffusers-format extras (DoRA magnitudes...) go to peft as they are
        used = {key for layer in layers for key in (layer.down, layer.up, layer.alpha) if key}
        stray = sorted(set(keys) - used)
        if stray:
            raise LoraError(f"The LoRA has tensors the engine cannot place in {model.name}: {_few(stray)}.")
    return layers


def check_fits(header: Header, fmt: str, model: ModelLayout) -> list[Layer]:
    """Raise LoraError naming the first layer whose widths do not fit `model`."""
    layers = plan(list(header), fmt, model)
    for layer in layers:
        down, up = _shape(header, layer.down), _shape(header, layer.up)
        if len(down) < 2 or len(up) < 2 or down[0] != up[1]:
            raise LoraError(f"{layer.name}: its down and up tensors do not pair ({down} and {up}).")
        bases = [model.weight(t) for t in layer.targets]
        for target, base in zip(layer.targets, bases, strict=True):
            if base is None or len(base) < 2:
                raise LoraError(f"{layer.name}: {target} is not a linear or conv layer of {model.name}.")
            if down[1] != base[1]:
                raise LoraError(f"{layer.name}: expected {base[1]} inputs (as {target}), found {down[1]}.")
        rows = [base[0] for base in bases if base]
        if sum(rows) != up[0]:
            parts = " + ".join(f"{t.rsplit('.', 1)[-1]} {n}" for t, n in zip(layer.targets, rows, strict=True))
            detail = f" ({parts})" if len(rows) > 1 else f" (as {layer.targets[0]})"
            raise LoraError(f"{layer.name}: expected {sum(rows)} outputs{detail}, found {up[0]}.")
    return layers


def _shape(header: Header, key: str) -> list[int]:
    return list(header[key]["shape"])  # type: ignore[call-overload]


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


# --- one planner per format


def _plan_diffusers(keys: list[str], model: ModelLayout) -> list[Layer]:
    """diffusers / peft keys: `<component>.<module>.lora_A.weight` (or lora.down / lora_down)."""
    layers, present = [], set(keys)
    for key in keys:
        match = re.match(r"(.+?)\.lora(?:_A|\.down|_down)(\.default)?\.weight$", key)
        if not match:
            continue
        base, suffix = match.group(1), match.group(2) or ""
        ups = [f"{base}.{u}{suffix}.weight" for u in ("lora_B", "lora.up", "lora_up")]
        up = next((k for k in ups if k in present), None)
        if up is None:
            raise LoraError(f"{base} has a down (lora_A) tensor but no up (lora_B) tensor.")
        alpha = f"{base}.alpha" if f"{base}.alpha" in present else None
        layers.append(Layer(base, key, up, alpha, (_qualified(base, model),)))
    return layers


def _qualified(base: str, model: ModelLayout) -> str:
    for component in COMPONENTS:
        if base.startswith(component + "."):
            return base
    for prefix in ("base_model.model.", "diffusion_model."):  # peft's own, and original checkpoints'
        base = base.removeprefix(prefix)
    return f"{model.denoiser}.{base}"


def _pairs(keys: list[str], down: str, up: str) -> list[tuple[str, str, str, str | None]]:
    """(base name, down key, up key, alpha key) of every `<base><down>` key."""
    found, present = [], set(keys)
    for key in keys:
        if key.endswith(down):
            base = key[: -len(down)]
            if base + up not in present:
                raise LoraError(f"{base} has a down tensor but no up tensor.")
            found.append((base, key, base + up, base + ".alpha" if base + ".alpha" in present else None))
    return found


def _flux_bfl_targets(flat: str, model: ModelLayout) -> tuple[tuple[str, ...], bool] | None:
    """diffusers modules for a BFL FLUX module name written with "_" (kohya's spelling), in
    FLUX.2's layout for a FLUX.2 model and FLUX.1's otherwise."""
    tables = BFL_TABLES.get(model.architecture or "FluxTransformer2DModel")  # no config: FLUX.1, as before
    if tables is None:
        return None
    double, single, top = tables
    match = re.match(r"(double|single)_blocks_(\d+)_(.+)$", flat)
    if match:
        kind, index, rest = match.groups()
        table = double if kind == "double" else single
        block = "transformer_blocks" if kind == "double" else "single_transformer_blocks"
        if rest in table:
            return tuple(f"transformer.{block}.{index}.{m}" for m in table[rest]), False
        return None
    if flat in top:
        return (f"transformer.{top[flat]}",), flat == "final_layer_adaLN_modulation_1"
    return None


def _plan_flux_kohya(keys: list[str], model: ModelLayout) -> list[Layer]:
    layers = []
    for base, down, up, alpha in _pairs(keys, ".lora_down.weight", ".lora_up.weight"):
        text = next((p for p in KOHYA_TEXT if base.startswith(p)), None)
        if text:
            targets: tuple[str, ...] | None = _kohya_text_target(base, text, model)
            swap = False
        else:
            found = _flux_bfl_targets(base.removeprefix("lora_unet_"), model)
            targets, swap = found if found else (None, False)
        if not targets:
            raise LoraError(f"{base} names no layer of {model.name}.")
        layers.append(Layer(base, down, up, alpha, targets, swap))
    return layers


def _plan_ai_toolkit(keys: list[str], model: ModelLayout) -> list[Layer]:
    """peft's lora_A / lora_B under `diffusion_model.`: BFL's module names for FLUX (ai-toolkit
    trains BFL's FLUX.2 model), the diffusers model's own for the rest."""
    layers = []
    for base, down, up, alpha in _pairs(keys, ".lora_A.weight", ".lora_B.weight"):
        name = base.removeprefix("diffusion_model.")
        own = model.weight(f"{model.denoiser}.{name}") is not None
        found = None if own else _flux_bfl_targets(name.replace(".", "_"), model)
        if not own and not found and re.match(r"(double|single)_blocks\.", name):
            raise LoraError(f"{base} names no layer of {model.name}.")
        targets, swap = found or ((_qualified(base, model),), False)
        layers.append(Layer(base, down, up, alpha, targets, swap))
    return layers


def _plan_musubi(keys: list[str], model: ModelLayout) -> list[Layer]:
    """musubi-tuner's `lora_unet_` + the module names of its Qwen-Image and Z-Image models, which
    are diffusers' with "_" for "." (read back through the model's own modules, as diffusers'
    _convert_non_diffusers_qwen_lora_to_diffusers and ..._z_image_... do)."""
    modules = model.modules_by_flat_name(model.denoiser)
    layers = []
    for base, down, up, alpha in _pairs(keys, ".lora_down.weight", ".lora_up.weight"):
        flat = base.removeprefix("lora_unet_")
        fused = re.match(r"(.+_)(attention_qkv|attention_out)$", flat)
        parts = [flat] if flat in modules or not fused else [fused[1] + p for p in ZIMAGE_ORIGINAL[fused[2]]]
        if not all(p in modules for p in parts):
            raise LoraError(f"{base} names no layer of {model.name}.")
        layers.append(Layer(base, down, up, alpha, tuple(f"{model.denoiser}.{modules[p]}" for p in parts)))
    return layers


def _plan_flux_xlabs(keys: list[str], model: ModelLayout) -> list[Layer]:
    layers = []
    for base, down, up, alpha in _pairs(keys, ".down.weight", ".up.weight"):
        match = re.match(r"(?:diffusion_model\.)?(double|single)_blocks\.(\d+)\.processor\.(\w+)$", base)
        modules = XLABS[match.group(1)].get(match.group(3)) if match else None
        if not match or not modules:
            raise LoraError(f"{base} names no layer of {model.name}.")
        block = "transformer_blocks" if match.group(1) == "double" else "single_transformer_blocks"
        layers.append(Layer(base, down, up, alpha, tuple(f"transformer.{block}.{match.group(2)}.{m}" for m in modules)))
    return layers


def _kohya_text_target(base: str, prefix: str, model: ModelLayout) -> tuple[str, ...] | None:
    component = KOHYA_TEXT[prefix]
    module = model.modules_by_flat_name(component).get(base.removeprefix(prefix))
    return (f"{component}.{module}",) if module else None


def _plan_sdxl_kohya(keys: list[str], model: ModelLayout) -> list[Layer]:
    unet = model.modules_by_flat_name("unet")
    per_block = int(model.config.get("layers_per_block", 2))  # type: ignore[call-overload]
    layers = []
    for base, down, up, alpha in _pairs(keys, ".lora_down.weight", ".lora_up.weight"):
        text = next((p for p in KOHYA_TEXT if base.startswith(p)), None)
        if text:
            targets = _kohya_text_target(base, text, model)
        else:
            module = unet.get(_sgm_to_diffusers(base.removeprefix("lora_unet_"), per_block))
            targets = (f"unet.{module}",) if module else None
        if not targets:
            raise LoraError(f"{base} names no layer of {model.name}.")
        layers.append(Layer(base, down, up, alpha, targets))
    return layers


# Stability's (sgm) UNet names -> diffusers', as diffusers' _maybe_map_sgm_blocks_to_diffusers
# and _convert_unet_lora_key do; names already in diffusers' spelling pass through.
SGM_RESNET = [("in_layers_2", "conv1"), ("out_layers_3", "conv2"), ("emb_layers_1", "time_emb_proj")]
SGM_RESNET += [("skip_connection", "conv_shortcut")]
SGM_TOP = {
    "input_blocks_0_0": "conv_in",
    "out_2": "conv_out",
    "time_embed_0": "time_embedding_linear_1",
    "time_embed_2": "time_embedding_linear_2",
    "label_emb_0_0": "add_embedding_linear_1",
    "label_emb_0_2": "add_embedding_linear_2",
}


def _sgm_to_diffusers(flat: str, per_block: int) -> str:
    if flat in SGM_TOP:
        return SGM_TOP[flat]
    match = re.match(r"(input_blocks|middle_block|output_blocks)_(\d+)_(\d+)_(.+)$", flat)
    if not match:
        return flat
    kind, outer, inner, rest = match.group(1), int(match.group(2)), int(match.group(3)), match.group(4)
    for old, new in SGM_RESNET:
        rest = re.sub(rf"^{old}$", new, rest)
    if kind == "middle_block":
        part = {0: "resnets_0", 1: "attentions_0", 2: "resnets_1"}.get(outer, "?")
        return f"mid_block_{part}_{rest}"
    if kind == "input_blocks":
        block, layer = divmod(outer - 1, per_block + 1)
        if rest == "op":
            return f"down_blocks_{block}_downsamplers_0_conv"
        return f"down_blocks_{block}_{['resnets', 'attentions'][min(inner, 1)]}_{layer}_{rest}"
    block, layer = divmod(outer, per_block + 1)
    if inner == 2 or (inner == 1 and rest == "conv"):  # a block without attention has its upsampler second
        return f"up_blocks_{block}_upsamplers_0_{rest}"
    return f"up_blocks_{block}_{['resnets', 'attentions'][inner]}_{layer}_{rest}"


_PLANNERS = {
    "kohya": lambda keys, model: (_plan_sdxl_kohya if model.denoiser == "unet" else _plan_flux_kohya)(keys, model),
    "ai-toolkit": _plan_ai_toolkit,
    "xlabs": _plan_flux_xlabs,
    "musubi": _plan_musubi,
}


def validate(
    path: Path, *, family: str, labels: dict[str, str], models: list[tuple[str, str, Path]]
) -> tuple[str, list[str], list[str]]:
    """Raise LoraError with a message for an admin; return the LoRA's format, the keys of the
    models it fits and, for each one it does not fit, why.

    `models` are the (key, name, folder) of installed models of `family`: the LoRA, converted to
    the family's layout as the engine converts it, is checked against each. It must fit at
    least one (a LoRA for FLUX.1's 3072 width cannot fit the 32-wide test model, and need not);
    jobs on the others leave it out.
    """
    header = read_header(path)
    families, fmt = detect(list(header), header_shapes(header))
    if family not in families:
        found = " or ".join(sorted(labels.get(f, f) for f in families))
        raise LoraError(f"This is a {found} LoRA ({fmt} format), not one for {labels.get(family, family)}.")
    fits, errors = [], []
    for key, name, folder in models:
        try:
            check_fits(header, fmt, model_layout(folder, name))
            fits.append(key)
        except LoraError as exc:
            errors.append(f"{name}: {exc}")
    if models and not fits:
        raise LoraError("The LoRA does not fit the installed models: " + "; ".join(errors))
    return fmt, fits, errors
