"""The memory plan's savers applied to a training run (worker side): where the pipeline's parts
live, the quantized frozen base, gradient checkpointing, the optimizer.

The plan (generation/memory/training.py, recorded on the run) chose them for the workers' card.
On this worker a saver it cannot run (bitsandbytes without CUDA) is skipped with one log line and
a note on the run page; the run goes on without it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import torch

from ..engine.devices import default_dtype
from ..engine.quantize import quantization
from ..engine.types import EngineError

log = logging.getLogger(__name__)


class Savers:
    def __init__(self, plan: dict[str, Any], device: torch.device) -> None:
        chosen = plan.get("savers") or {}
        self.device = device
        self.compute = default_dtype(device)
        self.cached_embeddings = bool(chosen.get("cached_embeddings"))
        self.checkpointing = bool(chosen.get("checkpointing"))
        self.adam8bit = bool(chosen.get("adam8bit"))
        self.base = str(plan.get("base") or "")
        self.encode_on_cpu = bool(plan.get("encode_on_cpu"))
        self.notes: list[str] = []
        self._skip_what_this_worker_cannot_run()

    def _skip_what_this_worker_cannot_run(self) -> None:
        cuda = self.device.type == "cuda"
        if self.adam8bit and not cuda:
            self.adam8bit = False
            self._note("8-bit AdamW (bitsandbytes) needs a CUDA worker: this run uses plain AdamW.")
        if self.base == "nf4" and not cuda:
            self.base = ""
            self._note("nf4 base weights (bitsandbytes) need a CUDA worker: the base stays unquantized.")

    def _note(self, text: str) -> None:
        log.info("Training: %s", text)
        self.notes.append(text)

    # --- loading

    def load_kwargs(self, network: str) -> dict[str, Any]:
        """from_pretrained's: the compute dtype, and the trained network's frozen weights
        quantized through diffusers' own config (QLoRA-style: the LoRA trains in fp32 over them)."""
        kwargs: dict[str, Any] = {"dtype": self.compute}
        if self.base:
            from diffusers.quantizers import PipelineQuantizationConfig

            try:
                config = quantization(self.base, "diffusers", self.device, self.compute)
            except EngineError as exc:
                self._note(f"{exc} The base stays unquantized.")
                self.base = ""
                return kwargs
            kwargs["quantization_config"] = PipelineQuantizationConfig(quant_mapping={network: config})
        return kwargs

    # --- placement

    def before_encoding(self, pipe: Any) -> None:
        """Captions and images are encoded once. With embeddings cached, each encoder visits the
        card in turn (diffusers' model offload) and the denoiser waits in CPU memory; without,
        the whole pipeline sits on the card."""
        if self.device.type != "cuda":
            return
        if not self.cached_embeddings:
            pipe.to(self.device)
        elif not self.encode_on_cpu:
            pipe.enable_model_cpu_offload(device=self.device)
        pipe.vae.to(self.device)

    def before_training(self, pipe: Any, network: Any) -> None:
        """The encoders stay in CPU memory and run there for the sample drawings (a few prompts
        every few hundred steps); the trained network and the VAE take the card."""
        if self.checkpointing:
            network.enable_gradient_checkpointing()
        if self.device.type != "cuda" or not self.cached_embeddings:
            return
        pipe.remove_all_hooks()
        for name, module in pipe.components.items():
            if name.startswith("text_encoder") and isinstance(module, torch.nn.Module):
                module.to("cpu")
                _run_on_cpu(module, self.device)
        if not self.base:  # a quantized network was placed on the card as it loaded
            network.to(self.device)
        pipe.vae.to(self.device)
        torch.cuda.empty_cache()

    def on_card(self, conditioning: Any) -> Any:
        """The cached embeddings where training runs (they were made wherever the encoders ran)."""
        if self.device.type != "cuda":
            return conditioning
        moved = {f.name: _moved(getattr(conditioning, f.name), self.device) for f in dataclasses.fields(conditioning)}
        return dataclasses.replace(conditioning, **moved)

    def optimizer(self, params: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
        if self.adam8bit:
            import bitsandbytes  # CUDA workers only (checked above)

            return bitsandbytes.optim.AdamW8bit(params, lr=lr, weight_decay=1e-4)
        return torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)

    def measured(self) -> dict[str, Any]:
        """The card's measured peak, to set beside the plan's prediction on the run page."""
        if self.device.type != "cuda":
            return {}
        return {"measured_peak_gb": round(torch.cuda.max_memory_allocated(self.device) / 2**30, 1)}


def _run_on_cpu(module: torch.nn.Module, device: torch.device) -> None:
    """The encoder computes on the CPU for a pipeline that runs on `device`: its inputs come to the
    CPU, its outputs go back to the card."""

    def inputs(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        return _moved(args, "cpu"), _moved(kwargs, "cpu")

    def outputs(_module: Any, _args: Any, output: Any) -> Any:
        return _moved(output, device)

    module.register_forward_pre_hook(inputs, with_kwargs=True)
    module.register_forward_hook(outputs)


def _moved(value: Any, device: torch.device | str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple):
        return tuple(_moved(v, device) for v in value)
    if isinstance(value, list):
        return [_moved(v, device) for v in value]
    if hasattr(value, "to_tuple"):  # transformers' ModelOutput, a dict kept as its own class
        for key in list(value.keys()):
            value[key] = _moved(value[key], device)
        return value
    if isinstance(value, dict):
        return {k: _moved(v, device) for k, v in value.items()}
    return value
