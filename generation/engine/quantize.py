"""A memory plan's precisions applied as a pipeline loads: each component's dtype, and weight
quantization through diffusers' and transformers' own configs (PipelineQuantizationConfig with a
TorchAoConfig or BitsAndBytesConfig per component), never by hand.
https://huggingface.co/docs/diffusers/quantization/overview

A plan comes from the worker (generation/memory/plan.py on the worker's card, or on CPU only
what the entry's `memory` option asks for): {"components": {name: {"precision", "placement"}}}.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import diffusers
import torch
import transformers
from diffusers.quantizers import PipelineQuantizationConfig

from .types import EngineError, without_paths

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def load_kwargs(
    path: Path, plan: dict[str, Any] | None, device: torch.device, compute: torch.dtype, *, gguf: str = ""
) -> dict[str, Any]:
    """What from_pretrained takes for the plan: `dtype` (one, or one per component), where a
    component is quantized `quantization_config`, and a denoiser read from a GGUF file."""
    check_stored(path, device)
    loaded = load_gguf_denoiser(path, Path(gguf), compute) if gguf else {}
    choices = {k: v for k, v in ((plan or {}).get("components") or {}).items() if k not in loaded}
    if not choices:
        return {"dtype": compute, **loaded}
    libraries = _libraries(path)
    dtypes: dict[str, torch.dtype] = {"default": compute}
    mapping = {}
    for name, choice in choices.items():
        if name not in libraries:
            raise EngineError(f"The memory plan names {name!r}, which {path.name} does not have.")
        precision = choice.get("precision") or ""
        if precision in DTYPES:
            dtypes[name] = DTYPES[precision]
        elif precision in ("int8", "fp8", "nf4"):
            mapping[name] = quantization(precision, libraries[name], device, compute)
        # else saved quantized (its own config says how) or read from a GGUF file: loads as it is
    kwargs: dict[str, Any] = {"dtype": dtypes if len(dtypes) > 1 else compute, **loaded}
    if mapping:
        kwargs["quantization_config"] = PipelineQuantizationConfig(quant_mapping=mapping)
    return kwargs


def load_gguf_denoiser(folder: Path, file: Path, compute: torch.dtype) -> dict[str, Any]:
    """The folder's denoiser read from a GGUF file (diffusers' GGUFQuantizationConfig: the
    weights stay in their blocks and are dequantized layer by layer as they run), its config
    from the folder."""
    index = json.loads((folder / "model_index.json").read_text())
    name = "unet" if "unet" in index else "transformer"
    if not file.is_file():
        raise EngineError(f"The GGUF file {file} is not on this worker.")
    try:
        cls = getattr(diffusers, index[name][1])
        model = cls.from_single_file(
            str(file),
            quantization_config=diffusers.GGUFQuantizationConfig(compute_dtype=compute),
            config=str(folder),
            subfolder=name,
            torch_dtype=compute,
            local_files_only=True,
        )
    except Exception as exc:  # diffusers' and gguf's own errors too: a file, not a bug
        raise EngineError(f"{file.name} does not load as {folder.name}'s {name}: {without_paths(str(exc))}") from None
    return {name: model}


def check_stored(path: Path, device: torch.device) -> None:
    """A component saved quantized loads as it is (diffusers reads its quantization_config), if
    this worker can run it: bitsandbytes needs CUDA, fp8 compute capability 8.9."""
    for config_path in sorted(path.glob("*/config.json")):
        try:
            quantization = json.loads(config_path.read_text()).get("quantization_config")
        except (OSError, ValueError, AttributeError):
            continue  # the component's own load says what is wrong with it
        if not isinstance(quantization, dict):
            continue
        name = config_path.parent.name
        if quantization.get("quant_method") == "bitsandbytes" and device.type != "cuda":
            raise EngineError(
                f"{name} was saved with bitsandbytes quantization, which needs a CUDA worker; "
                f"this one runs on {_describe(device)}."
            )
        if "Float8" in json.dumps(quantization.get("quant_type", "")) and not _has_fp8(device):
            raise EngineError(
                f"{name} was saved in fp8, which needs a CUDA card of compute capability 8.9 or higher; "
                f"this worker runs on {_describe(device)}."
            )


def _libraries(path: Path) -> dict[str, str]:
    index = json.loads((path / "model_index.json").read_text())
    return {k: v[0] for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and len(v) == 2}


def quantization(precision: str, library: str, device: torch.device, compute: torch.dtype) -> Any:
    """The library's config for one component; an EngineError saying why where this worker
    cannot run it (fp8 below compute capability 8.9, bitsandbytes without CUDA)."""
    if precision in ("int8", "fp8"):
        if precision == "fp8" and not _has_fp8(device):
            raise EngineError(
                "fp8 weights need a CUDA card of compute capability 8.9 or higher (L4, H100); "
                f"this worker runs on {_describe(device)}."
            )
        try:  # torchao: optional on a worker that never quantizes
            from torchao.quantization import Float8WeightOnlyConfig, Int8WeightOnlyConfig
        except ImportError:
            raise EngineError(f"{precision} weights need torchao on the worker (pinned in requirements.txt).") from None
        config = Int8WeightOnlyConfig() if precision == "int8" else Float8WeightOnlyConfig()
        return _library(library).TorchAoConfig(quant_type=config)
    if precision == "nf4":
        if device.type != "cuda":
            raise EngineError(f"nf4 weights (bitsandbytes) need a CUDA worker; this one runs on {_describe(device)}.")
        try:  # bitsandbytes: CUDA workers only
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise EngineError("nf4 weights need bitsandbytes on the worker (pip install bitsandbytes).") from None
        return _library(library).BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute
        )
    raise EngineError(f"Unknown precision {precision!r} in the memory plan.")


def _library(name: str) -> Any:
    if name in ("diffusers", "transformers"):
        return diffusers if name == "diffusers" else transformers
    raise EngineError(f"Components from {name} cannot be quantized.")


def _has_fp8(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 9)


def _describe(device: torch.device) -> str:
    if device.type != "cuda":
        return "the CPU"
    major, minor = torch.cuda.get_device_capability(device)
    return f"{torch.cuda.get_device_name(device)} (compute capability {major}.{minor})"


def bridge_precisions(pipe: Any, compute: torch.dtype) -> None:
    """Where a component is kept in another precision than the pipeline computes in (T5 or the
    VAE in fp32 on a card without bf16), pipelines hand tensors of one component's dtype to the
    next (FLUX's latents take T5's): every component then gets its inputs in its own dtype, and
    those in another precision give their outputs back in the compute dtype."""
    modules = {n: m for n, m in pipe.components.items() if isinstance(m, torch.nn.Module)}
    dtypes: dict[str, torch.dtype] = {}
    for name, module in modules.items():
        if isinstance(dtype := getattr(module, "dtype", None), torch.dtype):
            dtypes[name] = dtype
    if all(dtype == compute or not dtype.is_floating_point for dtype in dtypes.values()):
        return
    for name, own in dtypes.items():
        module = modules[name]
        if name == "vae":
            _wrap_vae(module, own)
            continue
        module.register_forward_pre_hook(lambda m, args, kwargs, d=own: _cast(args, kwargs, d), with_kwargs=True)
        if own != compute:
            module.register_forward_hook(lambda m, args, output, d=compute: _cast_output(output, d))


def _wrap_vae(vae: Any, own: torch.dtype) -> None:
    """The VAE decodes latents cast to its dtype (pipelines hand it the compute dtype's)."""
    decode, encode = vae.decode, vae.encode

    def decode_in_own(z: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        return decode(z.to(own), *args, **kwargs)

    def encode_in_own(x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        return encode(x.to(own), *args, **kwargs)

    vae.decode, vae.encode = decode_in_own, encode_in_own


def _cast(args: tuple[Any, ...], kwargs: dict[str, Any], dtype: torch.dtype) -> tuple[tuple[Any, ...], dict[str, Any]]:
    def cast(value: Any) -> Any:
        return value.to(dtype) if isinstance(value, torch.Tensor) and value.is_floating_point() else value

    return tuple(cast(a) for a in args), {k: cast(v) for k, v in kwargs.items()}


def _cast_output(output: Any, dtype: torch.dtype) -> Any:
    if isinstance(output, torch.Tensor) and output.is_floating_point():
        return output.to(dtype)
    if hasattr(output, "keys") and hasattr(output, "__setitem__"):  # transformers' ModelOutput
        for key in list(output.keys()):
            value = output[key]
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                output[key] = value.to(dtype)
            elif isinstance(value, tuple):
                output[key] = tuple(v.to(dtype) if isinstance(v, torch.Tensor) else v for v in value)
        return output
    if isinstance(output, tuple):
        return tuple(v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v for v in output)
    return output
