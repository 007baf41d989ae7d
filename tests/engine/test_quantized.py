"""A memory plan's precisions applied as the tiny FLUX loads, on CPU: torchao int8 weights draw
close to the unquantized model in less memory and keep LoRAs working; a card without bf16
computes in fp16 with T5 and the VAE in fp32 and draws no NaN or black image; what this worker
cannot run (fp8 on a CPU, nf4 without CUDA) is refused with the reason."""

from pathlib import Path

import numpy as np
import pytest

from generation.devtools.loras import make_lora
from generation.devtools.tiny import TINY_BUILDERS
from generation.engine import ENGINES, EngineError, engine_class
from generation.engine.flux import FluxEngine
from generation.engine.types import GenerationRequest, LoraSpec

# Written down: int8 weight-only on the tiny FLUX measured 57.8 dB on this machine; 30 dB is
# "the same picture" (a JPEG at quality 75 is about 30-35 dB).
PSNR_FLOOR = 30.0
INT8 = {"components": {"transformer": {"precision": "int8"}, "text_encoder_2": {"precision": "int8"}}}


def render(engine: FluxEngine, **overrides) -> np.ndarray:
    values = {"prompt": "a blue circle", "negative_prompt": "", "width": 64, "height": 64}
    values |= {"steps": 3, "guidance_scale": 3.5, "seeds": [7]}
    images: list = []
    engine.generate(
        GenerationRequest(**(values | overrides)),
        max_batch=1,
        on_step=lambda s, t: None,
        on_images=lambda first, batch: images.extend(batch),
    )
    return np.asarray(images[0], dtype=np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a - b) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.fixture(scope="module")
def plain(tiny_flux_dir: Path) -> FluxEngine:
    return FluxEngine(tiny_flux_dir, device="cpu")


@pytest.fixture(scope="module")
def int8(tiny_flux_dir: Path) -> FluxEngine:
    return FluxEngine(tiny_flux_dir, device="cpu", plan=INT8)


def test_int8_weights_draw_close_to_the_unquantized_model_in_less_memory(plain, int8) -> None:
    assert psnr(render(plain), render(int8)) >= PSNR_FLOOR
    assert int8.memory_bytes < plain.memory_bytes
    quantized = type(int8.pipe.transformer.transformer_blocks[0].attn.to_q.weight).__name__
    assert "Int8" in quantized  # torchao's tensor, through diffusers' TorchAoConfig


def test_a_lora_still_applies_to_int8_weights(plain, int8, tiny_flux_dir, tmp_path) -> None:
    lora = make_lora("flux", tiny_flux_dir, tmp_path / "style", seed=1)
    styled = render(int8, loras=[LoraSpec(lora, 1.0)])
    assert psnr(styled, render(int8)) < 40  # the LoRA changes the image...
    assert psnr(styled, render(plain, loras=[LoraSpec(lora, 1.0)])) >= PSNR_FLOOR  # ...as it does unquantized


def test_a_card_without_bf16_computes_in_fp16_with_t5_and_the_vae_in_fp32(tiny_flux_dir, monkeypatch) -> None:
    import torch

    from generation.engine import base

    monkeypatch.setattr(base, "default_dtype", lambda device: torch.float16)  # a T4's compute dtype
    plan = {"components": {"text_encoder_2": {"precision": "fp32"}, "vae": {"precision": "fp32"}}}
    engine = FluxEngine(tiny_flux_dir, device="cpu", plan=plan)
    assert engine.pipe.transformer.dtype == torch.float16 and engine.pipe.text_encoder_2.dtype == torch.float32
    image = render(engine)
    assert np.isfinite(image).all() and image.max() > 0  # neither NaN nor black


@pytest.mark.parametrize(("precision", "reason"), [("fp8", "compute capability 8.9"), ("nf4", "need a CUDA worker")])
def test_what_this_worker_cannot_run_is_refused_with_the_reason(tiny_flux_dir, precision, reason) -> None:
    with pytest.raises(EngineError, match=reason):
        FluxEngine(tiny_flux_dir, device="cpu", plan={"components": {"transformer": {"precision": precision}}})


def test_a_plan_naming_a_component_the_folder_lacks_is_refused(tiny_flux_dir) -> None:
    with pytest.raises(EngineError, match="does not have"):
        FluxEngine(tiny_flux_dir, device="cpu", plan={"components": {"unet": {"precision": "int8"}}})


@pytest.mark.parametrize("family", sorted(ENGINES))
def test_every_family_computes_in_fp16_as_planned_for_a_t4_without_nan_or_black(family, tmp_path, monkeypatch) -> None:
    """A T4's plan (fp16, T5 and the VAE in fp32) on each family's tiny pipeline, run in fp16."""
    import torch

    from generation.engine import base
    from generation.memory.cards import CARDS
    from generation.memory.components import folder_components
    from generation.memory.plan import plan_for

    folder = TINY_BUILDERS[family](tmp_path / family)
    plan = plan_for(folder_components(folder), CARDS["t4"]).as_json()
    monkeypatch.setattr(base, "default_dtype", lambda device: torch.float16)
    engine = engine_class(family)(folder, device="cpu", plan=plan)
    image = render(engine)
    assert np.isfinite(image).all() and image.max() > 0, plan
    # Its img2img and inpaint twins share the modules without casting them (diffusers' from_pipe would).
    dtypes = {name: getattr(m, "dtype", None) for name, m in engine.pipe.components.items()}
    for kind in ("img2img_class", "inpaint_class"):
        if getattr(engine, kind) is not None:
            getattr(engine, kind.replace("_class", "_pipe"))
    assert {name: getattr(m, "dtype", None) for name, m in engine.pipe.components.items()} == dtypes


def prequantized(tiny_flux_dir: Path, folder: Path) -> Path:
    """The tiny FLUX with its transformer saved quantized (torchao int8, safetensors), as a folder
    a team downloads pre-quantized."""
    import shutil

    import torch
    from diffusers import FluxTransformer2DModel, TorchAoConfig
    from torchao.quantization import Int8WeightOnlyConfig

    shutil.copytree(tiny_flux_dir, folder)
    transformer = FluxTransformer2DModel.from_pretrained(
        tiny_flux_dir,
        subfolder="transformer",
        quantization_config=TorchAoConfig(Int8WeightOnlyConfig()),
        torch_dtype=torch.float32,
    )
    shutil.rmtree(folder / "transformer")
    transformer.save_pretrained(folder / "transformer")
    return folder


def test_a_folder_saved_quantized_loads_as_it_is_and_is_planned_at_its_stored_size(
    plain, tiny_flux_dir, tmp_path
) -> None:
    from generation.memory.cards import CARDS
    from generation.memory.components import folder_components
    from generation.memory.plan import plan_for

    folder = prequantized(tiny_flux_dir, tmp_path / "prequantized")
    components = {c.name: c for c in folder_components(folder)}
    assert components["transformer"].stored == "int8 (torchao)"
    plan = plan_for(list(components.values()), CARDS["a10g"])
    assert plan.choices["transformer"].precision == "int8 (torchao)"
    engine = FluxEngine(folder, device="cpu", plan=plan.as_json())
    assert "Int8" in type(engine.pipe.transformer.transformer_blocks[0].attn.to_q.weight).__name__
    assert psnr(render(plain), render(engine)) >= PSNR_FLOOR


def test_a_folder_saved_with_bitsandbytes_is_refused_on_a_cpu_worker_with_the_reason(tiny_flux_dir, tmp_path) -> None:
    import json
    import shutil

    folder = tmp_path / "bnb"
    shutil.copytree(tiny_flux_dir, folder)
    config = json.loads((folder / "transformer" / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}
    (folder / "transformer" / "config.json").write_text(json.dumps(config))
    with pytest.raises(EngineError, match="saved with bitsandbytes quantization, which needs a CUDA worker"):
        FluxEngine(folder, device="cpu")
