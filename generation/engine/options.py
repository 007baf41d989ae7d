"""The loading options a model entry carries (`ImageModel.options`), checked without torch.

The engine reads them when it loads a model (`base.py`: memory_mode, native_size, and refiner for
the refiner pass; `flux.py`: max_sequence_length, true_cfg_scale; `hidream.py`: llama). The admin checks an entry
against this table on save, so a typo or a wrong type is refused there instead of failing on a
worker later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .families import FAMILIES

# Where the pipeline's weights sit (devices.place): https://huggingface.co/docs/diffusers/optimization/memory
MEMORY_MODES = ("auto", "gpu", "model_offload", "sequential_offload", "cpu")
# A component's precision and placement in a memory plan (generation/memory/plan.py), and in the
# `memory` option that overrides the plan for some components.
PRECISIONS = ("bf16", "fp16", "fp32", "fp8", "int8", "nf4")
PLACEMENTS = ("gpu", "offload", "sequential")
# Families whose denoiser diffusers loads from a single (GGUF) file: Z-Image's has no single-file loader.
GGUF_FAMILIES = ("flux", "fluxkontext", "flux2", "flux2dev", "sd3", "sdxl", "hidream", "qwenimage", "qwenimageedit")

# --- the `speed` option (generation/speed/: resolved by the worker, applied by engine/speed.py)
# The studio's names for diffusers' attention backends (`set_attention_backend`); "sdpa" is
# PyTorch's own scaled dot product attention, diffusers' default.
ATTENTION = {"sdpa": "native", "flash": "flash", "flash_3": "_flash_3", "sage": "sage", "cudnn": "_native_cudnn"}
# The compute capability each needs (flash 3 is Hopper's only); "auto" picks the first of these
# that is installed and that the card runs, else SDPA.
ATTENTION_NEEDS = {"flash_3": (9, 0), "sage": (8, 0), "flash": (8, 0), "cudnn": (8, 0)}
AUTO_ORDER = ("flash_3", "flash", "sage")
# "gpu": compiled on a CUDA worker only (a laptop's CPU worker would spend a minute compiling the
# demo model); "always": also on the CPU (the tests, the benchmark's CPU run).
COMPILE = ("off", "gpu", "always")
# diffusers' step caches: First Block Cache skips the remaining blocks of a step whose first
# block's output barely moved (`value`: its threshold); TaylorSeer predicts every `value`-th step.
CACHES = {"first_block": (0.01, 1.0), "taylorseer": (2, 10)}
# The caches each family's pipeline runs in diffusers 0.42 (tests/engine/test_speed.py draws with
# each): the others either name no cache context in their denoising loop (FLUX.1 Kontext,
# FLUX.2 [dev], Chroma), or their blocks return what First Block Cache cannot take (FLUX.2 klein,
# Qwen-Image). SD3, SDXL, HiDream and Z-Image denoisers take no cache hooks at all.
CACHE_METHODS = {
    "flux": ("first_block", "taylorseer"),
    "flux2": ("taylorseer",),
    "qwenimage": ("taylorseer",),
    "qwenimageedit": ("taylorseer",),
}
TIERS = ("draft", "standard", "high", "ultra")
KEYS = ("compile", "dynamic", "attention", "cache", "lora_rank", "lora_slots")
MAX_LORA_RANK = 256
MAX_LORA_SLOTS = 4


@dataclass(frozen=True)
class Option:
    meaning: str
    kind: type = str
    low: float = 0
    high: float = 0
    choices: tuple[str, ...] = ()
    families: tuple[str, ...] = ()  # empty: every family
    check: Callable[[Any, str], str | None] | None = None  # an object's shape (kind dict)


OPTIONS: dict[str, Option] = {
    "memory_mode": Option("where the weights sit on a GPU worker", choices=MEMORY_MODES),
    "native_size": Option(
        "the side in px a small model was trained at: it draws there, the output is scaled", int, 16, 4096
    ),
    "max_sequence_length": Option(
        "prompt tokens for T5 (a model trained on short sequences must run on them)",
        int,
        1,
        512,
        families=("flux", "fluxkontext"),
    ),
    "true_cfg_scale": Option(
        "true classifier-free guidance: each step runs twice, with and without the prompt (the asset "
        "type's negative prompt), and is pushed this far from the second; 1 is off (inpaint runs without it)",
        float,
        1,
        10,
        families=("flux",),
    ),
    "refiner": Option(
        "a local folder of SDXL's refiner (StableDiffusionXLImg2ImgPipeline) for the refiner pass", families=("sdxl",)
    ),
    "llama": Option(
        "HiDream's fourth text encoder: a Hugging Face repo in the cache, or a folder", families=("hidream",)
    ),
    "gguf": Option(
        "the transformer (UNet for SDXL) from a GGUF file, a path under STUDIO_MODELS_DIR (ComfyUI's "
        "quantized files: Q8_0, Q6_K, Q5_K, Q4_K...); the other components come from the entry's folder",
        families=GGUF_FAMILIES,
    ),
    "memory": Option(
        "the memory plan overridden for some components, e.g. "
        '{"transformer": {"precision": "int8", "placement": "gpu"}}: precision '
        f"({', '.join(PRECISIONS)}), placement ({', '.join(PLACEMENTS)})",
        dict,
        check=lambda value, family: _memory_problem(value),
    ),
    "speed": Option(
        "how a GPU worker makes it fast: "
        '{"compile": "gpu", "attention": "auto", "cache": {"draft": {"method": "first_block", "value": 0.35}}, '
        f'"lora_rank": "auto", "lora_slots": 1}}: compile ({", ".join(COMPILE)}), attention (auto, '
        f"{', '.join(ATTENTION)}), a step cache per quality tier ({', '.join(CACHES)})",
        dict,
        check=lambda value, family: speed_problem(value, family),
    ),
}


def known_options(family: str) -> list[str]:
    return sorted(name for name, option in OPTIONS.items() if not option.families or family in option.families)


def describe() -> str:
    """Every option and what it means, for the admin page."""
    return "; ".join(f"{name}: {option.meaning}{_range(option)}{_only(option)}" for name, option in OPTIONS.items())


def _only(option: Option) -> str:
    labels = [str(FAMILIES.get(family, {}).get("label", family)) for family in option.families]
    return f" ({' and '.join(labels)} only)" if labels else ""


def option_errors(family: str, options: Any) -> list[str]:
    """What is wrong with a model entry's options, one message each (empty: nothing)."""
    if not isinstance(options, dict):
        return ['Options are a JSON object, e.g. {"memory_mode": "model_offload"}, or {} for none.']
    known = known_options(family)
    label = FAMILIES.get(family, {}).get("label", family)
    errors = []
    for name, value in options.items():
        if name not in known:
            errors.append(f"{name!r} is not an option of {label} models; known: {', '.join(known)}.")
        elif problem := _value_problem(OPTIONS[name], value, family):
            errors.append(f"{name} {problem}.")
    return errors


def _value_problem(option: Option, value: Any, family: str) -> str | None:
    if option.check is not None:
        return option.check(value, family)
    if option.kind in (int, float):
        numeric = (int, float) if option.kind is float else int
        if isinstance(value, bool) or not isinstance(value, numeric):
            kind = "number" if option.kind is float else "whole number"
            return f"must be a {kind}{_range(option)}, not {value!r}"
        if not option.low <= value <= option.high:
            return f"must be{_range(option)}, not {value}"
        return None
    if not isinstance(value, str) or not value.strip():
        return f"must be a non-empty text{_range(option)}, not {value!r}"
    if option.choices and value not in option.choices:
        return f"must be one of {', '.join(option.choices)}, not {value!r}"
    return None


def _memory_problem(value: Any) -> str | None:
    """The shape of a `memory` override; which components the model has, and what fits the
    workers' cards, the model's clean() checks against its installed folder."""
    if not isinstance(value, dict) or not value:
        return 'is an object naming components, e.g. {"transformer": {"precision": "int8"}}'
    for name, choice in value.items():
        if not isinstance(choice, dict) or not choice or set(choice) - {"precision", "placement"}:
            return f'gives {name} as {{"precision": ..., "placement": ...}}'
        if "precision" in choice and choice["precision"] not in PRECISIONS:
            return f"gives {name} a precision of {', '.join(PRECISIONS)}, not {choice['precision']!r}"
        if "placement" in choice and choice["placement"] not in PLACEMENTS:
            return f"gives {name} a placement of {', '.join(PLACEMENTS)}, not {choice['placement']!r}"
    return None


def _range(option: Option) -> str:
    if option.kind in (int, float):
        return f" from {option.low:g} to {option.high:g}"
    return f" ({', '.join(option.choices)})" if option.choices else ""


def speed_problem(value: Any, family: str) -> str | None:
    """What is wrong with a `speed` option's shape, or None."""
    if not isinstance(value, dict):
        return 'is an object, e.g. {"compile": "gpu", "attention": "auto"}'
    if unknown := sorted(set(value) - set(KEYS)):
        return f"has no {', '.join(unknown)}; it takes {', '.join(KEYS)}"
    if value.get("compile", "off") not in COMPILE:
        return f"compile is one of {', '.join(COMPILE)}, not {value['compile']!r}"
    if "dynamic" in value and not isinstance(value["dynamic"], bool):
        return f"dynamic is true or false (left out: true where several sizes are offered), not {value['dynamic']!r}"
    if value.get("attention", "auto") not in ("auto", *ATTENTION):
        return f"attention is one of auto, {', '.join(ATTENTION)}, not {value['attention']!r}"
    if problem := _cache_problem(value.get("cache", {}), family):
        return problem
    rank = value.get("lora_rank", "auto")
    if rank != "auto" and (isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= MAX_LORA_RANK):
        return f'lora_rank is "auto" or a whole number from 1 to {MAX_LORA_RANK}, not {rank!r}'
    slots = value.get("lora_slots", 1)
    if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= MAX_LORA_SLOTS:
        return f"lora_slots is a whole number from 1 to {MAX_LORA_SLOTS}, not {slots!r}"
    return None


def _cache_problem(caches: Any, family: str) -> str | None:
    if not isinstance(caches, dict):
        return 'cache names quality tiers, e.g. {"draft": {"method": "first_block", "value": 0.35}}'
    methods = CACHE_METHODS.get(family, ())
    if caches and not methods:
        return f"cache: this family's pipeline runs no step cache (only {', '.join(CACHE_METHODS)})"
    for tier, spec in caches.items():
        if tier not in TIERS:
            return f"cache names quality tiers ({', '.join(TIERS)}), not {tier!r}"
        if not isinstance(spec, dict) or set(spec) != {"method", "value"} or spec["method"] not in CACHES:
            return f'cache for {tier} is {{"method": {" or ".join(map(repr, CACHES))}, "value": ...}}'
        if spec["method"] not in methods:
            return f"cache for {tier}: this family's pipeline runs {' or '.join(methods)} only, not {spec['method']}"
        low, high = CACHES[spec["method"]]
        if isinstance(spec["value"], bool) or not isinstance(spec["value"], (int, float)):
            return f"cache for {tier}: value is a number from {low:g} to {high:g}"
        if not low <= spec["value"] <= high:
            return f"cache for {tier}: {spec['method']} takes a value from {low:g} to {high:g}, not {spec['value']}"
    return None
