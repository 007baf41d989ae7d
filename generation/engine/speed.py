"""A speed profile applied to a loaded pipeline (the worker resolves it: generation/speed/profile.py).

Once, at load: the attention backend (diffusers' `set_attention_backend`, falling back to SDPA
with one log line where the backend is not installed or the card cannot run it), LoRA hot-swap
slots (`enable_lora_hotswap`), then regional compilation of the denoiser's repeated blocks
(`compile_repeated_blocks`). Per job: the quality tier's step cache (`enable_cache`), run
uncompiled because diffusers' cache hooks do not run inside a compiled graph, and the job's LoRAs
swapped into the slots, their strengths written into the slots' scales, so nothing recompiles.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch

from .options import ATTENTION, ATTENTION_NEEDS, AUTO_ORDER
from .types import EngineError, LoraSpec

log = logging.getLogger(__name__)

# The repeated blocks of denoisers that do not name theirs (`_repeated_blocks`) in diffusers.
BLOCKS = {
    "SD3Transformer2DModel": ["JointTransformerBlock"],
    "HiDreamImageTransformer2DModel": ["HiDreamImageTransformerBlock", "HiDreamImageSingleTransformerBlock"],
}
# The package each attention backend needs installed.
PACKAGES = {"flash": "flash_attn", "flash_3": "flash_attn_interface", "sage": "sageattention"}
# What torch.compile raises when a graph cannot be compiled (seen on the first call, not at compile()).
COMPILE_ERRORS: tuple[type[BaseException], ...] = (torch._dynamo.exc.TorchDynamoException,)


def denoiser_of(pipe: Any) -> Any:
    return getattr(pipe, "transformer", None) or pipe.unet


class Speed:
    """What a profile did to one loaded pipeline, and what each job does with it."""

    def __init__(self, pipe: Any, profile: dict[str, Any] | None, device: torch.device) -> None:
        profile = profile or {}
        self.profile = profile
        self.denoiser = denoiser_of(pipe)
        self.attention = _set_attention(self.denoiser, profile.get("attention", "sdpa"), device)
        self.slots: Slots | None = None
        self.compiled = False
        if profile.get("compile"):
            if profile.get("lora_rank"):
                self.slots = Slots.make(pipe, self.denoiser, profile["lora_rank"], profile.get("lora_slots", 1))
            self.compiled = _compile(self.denoiser, dynamic=profile.get("dynamic"), cache_dir=profile.get("cache_dir"))

    def record(self, quality: str) -> dict[str, Any]:
        """What a job of this quality runs with, for its row (GenerationJob.speed)."""
        cache = self.cache_config(quality)
        return {
            "compiled": self.compiled,
            "attention": self.attention,
            "cache": _cache_label(self.profile["cache"][quality]) if cache else "",
            "hotswap": self.slots.rank if self.slots else 0,
        }

    def cache_config(self, quality: str) -> Any:
        spec = (self.profile.get("cache") or {}).get(quality)
        if not spec or not hasattr(self.denoiser, "enable_cache"):
            return None
        from diffusers import FirstBlockCacheConfig, TaylorSeerCacheConfig

        if spec["method"] == "first_block":
            return FirstBlockCacheConfig(threshold=float(spec["value"]))
        return TaylorSeerCacheConfig(cache_interval=int(spec["value"]), taylor_factors_dtype=torch.float32)

    @contextmanager
    def running(self, quality: str) -> Iterator[None]:
        """One pipeline call: with the tier's step cache, uncompiled while the cache is on (its
        hooks cannot run inside a compiled graph); compiled otherwise, falling back to eager for
        good, with one log line, where the graph does not compile."""
        config = self.cache_config(quality)
        if config is not None:
            self.denoiser.enable_cache(config)
        eager = config is not None and self.compiled
        try:
            with torch.compiler.set_stance("force_eager") if eager else nullcontext():
                yield
        finally:
            if config is not None:
                self.denoiser.disable_cache()

    def compile_failed(self, exc: BaseException) -> bool:
        """A compiled call failed in the compiler: run eager from now on (True: call again)."""
        if not self.compiled or not isinstance(exc, COMPILE_ERRORS):
            return False
        log.warning("Compiled run failed (%s: %s); this model runs uncompiled from now on", type(exc).__name__, exc)
        for module in self.denoiser.modules():  # what nn.Module.compile() set, undone
            module._compiled_call_impl = None
        self.compiled = False
        return True


class Slots:
    """LoRA hot-swap: fixed adapters ("slot_0", ...) of `rank` over every linear layer of the
    denoiser, compiled once; a job's LoRAs are swapped into them and their strengths written into
    the slots' scale tensors, an empty slot's scale is 0. A LoRA of a larger rank, or on layers
    other than linear ones, cannot go in: the job fails saying so."""

    def __init__(self, pipe: Any, rank: int, names: list[str]) -> None:
        self.pipe, self.rank, self.names = pipe, rank, names
        self.held: list[Path | None] = [None] * len(names)
        self.base: list[dict[str, torch.Tensor]] = [{} for _ in names]  # each slot's own scales

    @classmethod
    def make(cls, pipe: Any, denoiser: Any, rank: int, count: int) -> Slots | None:
        prefix = "transformer" if getattr(pipe, "transformer", None) is denoiser else "unet"
        names = [f"slot_{i}" for i in range(count)]
        try:
            pipe.enable_lora_hotswap(target_rank=rank)
            zeros = _zero_adapter(denoiser, prefix, rank)  # before the first slot wraps the layers
            for name in names:  # each its own tensors: a slot's weights are swapped in place
                pipe.load_lora_weights({key: zero.clone() for key, zero in zeros.items()}, adapter_name=name)
            pipe.set_adapters(names, adapter_weights=[1.0] * count)
        except Exception as exc:  # a quantized layer PEFT cannot wrap, a pipeline without LoRA support
            log.warning("LoRA hot-swap not set up (%s: %s); a change of LoRA recompiles", type(exc).__name__, exc)
            return None
        slots = cls(pipe, rank, names)
        slots._tensor_scales()
        for index in range(count):
            slots._scale(index, 0.0)
        return slots

    def use(self, loras: list[LoraSpec], weights: Any) -> None:
        """Put this job's LoRAs in the slots (`weights(path)`: what load_lora_weights takes)."""
        if len(loras) > len(self.names):
            raise EngineError(
                f"This job has {len(loras)} LoRAs and the model's speed profile hot-swaps {len(self.names)} "
                "(its lora_slots); raise lora_slots."
            )
        for index, name in enumerate(self.names):
            lora = loras[index] if index < len(loras) else None
            if lora is not None and self.held[index] != lora.path:
                self._swap(index, name, lora.path, weights)
            self._scale(index, lora.strength if lora is not None else 0.0)

    def clear(self) -> None:
        for index in range(len(self.names)):
            self._scale(index, 0.0)

    def _swap(self, index: int, name: str, path: Path, weights: Any) -> None:
        if not path.is_file():
            raise EngineError(f"LoRA file {path.name} does not exist on this worker.")
        self.held[index] = None  # half-swapped until it is done
        try:
            self.pipe.load_lora_weights(weights(path), adapter_name=name, hotswap=True)
        except Exception as exc:
            raise EngineError(
                f"LoRA {path.name} cannot be hot-swapped into this compiled model ({exc}); its rank may be "
                f"above the profile's lora_rank {self.rank}: raise it, or restart the workers after adding LoRAs."
            ) from exc
        self.held[index] = path
        self.base[index] = {key: scale[name].clone() for key, scale in self._scales(name)}

    def _scale(self, index: int, strength: float) -> None:
        name = self.names[index]
        for key, scale in self._scales(name):
            base = self.base[index].get(key)
            scale[name].fill_(0.0 if base is None else float(base) * strength)

    def _scales(self, name: str) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
        for key, module in denoiser_of(self.pipe).named_modules():
            scaling = getattr(module, "scaling", None)
            if isinstance(scaling, dict) and name in scaling:
                yield key, scaling

    def _tensor_scales(self) -> None:
        """Scales as tensors, as enable_lora_hotswap leaves them (set_adapters wrote floats):
        a float is part of the compiled graph's guards, a tensor's value is not."""
        for name in self.names:
            for _key, scaling in self._scales(name):
                if not isinstance(scaling[name], torch.Tensor):
                    scaling[name] = torch.tensor(float(scaling[name]))


def _zero_adapter(denoiser: Any, prefix: str, rank: int) -> dict[str, torch.Tensor]:
    """A LoRA of zeros over every linear layer: the slot any LoRA on linear layers swaps into."""
    adapter = {}
    for name, module in denoiser.named_modules():
        if isinstance(module, torch.nn.Linear) and "lora_" not in name:
            adapter[f"{prefix}.{name}.lora_A.weight"] = torch.zeros(rank, module.in_features)
            adapter[f"{prefix}.{name}.lora_B.weight"] = torch.zeros(module.out_features, rank)
    return adapter


def _set_attention(denoiser: Any, wanted: str, device: torch.device) -> str:
    """The backend set, by the studio's name; SDPA where the one asked for cannot run here."""
    choice = _auto_attention(device) if wanted == "auto" else wanted
    if choice == "sdpa":
        return "sdpa"
    problem = _attention_problem(choice, device)
    if problem is None:
        try:
            denoiser.set_attention_backend(ATTENTION[choice])
            log.info("Attention backend: %s", choice)
            return choice
        except Exception as exc:  # diffusers checks the package's version, the kernels
            problem = str(exc)
    log.warning("%s attention is not available here (%s); using SDPA", choice, problem)
    return "sdpa"


def _auto_attention(device: torch.device) -> str:
    return next((name for name in AUTO_ORDER if _attention_problem(name, device) is None), "sdpa")


def _attention_problem(name: str, device: torch.device) -> str | None:
    if device.type != "cuda":
        return "it needs a CUDA GPU"
    capability = torch.cuda.get_device_capability(device)
    needs = ATTENTION_NEEDS.get(name, (0, 0))
    if capability < needs or (name == "flash_3" and capability[0] != 9):
        return f"the card has compute capability {capability[0]}.{capability[1]}"
    package = PACKAGES.get(name)
    if package and importlib.util.find_spec(package) is None:
        return f"{package} is not installed"
    return None


def _compile(denoiser: Any, *, dynamic: bool | None, cache_dir: str | None) -> bool:
    """Regional compilation: each repeated block compiled once (the blocks share one graph),
    seconds instead of the minute a whole-model compile takes. Inductor keeps what it compiled in
    `cache_dir` (shared by workers, a warm one makes a second worker's first job fast)."""
    if cache_dir:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", cache_dir)  # read when inductor first compiles
    kwargs = {"fullgraph": True, "dynamic": dynamic}
    if getattr(denoiser, "_repeated_blocks", None):
        denoiser.compile_repeated_blocks(**kwargs)
        return True
    blocks = [m for m in denoiser.modules() if type(m).__name__ in BLOCKS.get(type(denoiser).__name__, [])]
    if not blocks:
        log.warning("%s names no repeated blocks to compile; it runs uncompiled", type(denoiser).__name__)
        return False
    for block in blocks:
        block.compile(**kwargs)
    return True


def _cache_label(spec: dict[str, Any]) -> str:
    if spec["method"] == "first_block":
        return f"First Block Cache at {spec['value']:g}"
    return f"TaylorSeer every {spec['value']:g} steps"
