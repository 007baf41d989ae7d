"""A speed profile applied to the tiny FLUX on CPU: regional compilation (inductor, with the C
compiler here), LoRAs hot-swapped into a compiled model without one recompile, the quality tier's
step cache drawing close to the uncached image, and attention backends this machine lacks falling
back to SDPA with one log line."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from generation.devtools.loras import make_lora
from generation.devtools.tiny import TINY_BUILDERS
from generation.engine import engine_class
from generation.engine.flux import FluxEngine
from generation.engine.options import CACHE_METHODS
from generation.engine.types import LoraSpec
from tests.engine.test_quantized import psnr, render

# Written down: on the tiny FLUX, 8 steps, seeds 3, 11 and 29, First Block Cache at 0.35 drew
# 57-60 dB and TaylorSeer every 3 steps 53-56 dB against the uncached render on this machine;
# 30 dB is "the same picture" (a JPEG at quality 75 is about 30-35 dB).
CACHE_PSNR_FLOOR = 30.0
DRAFT_CACHE = {"draft": {"method": "first_block", "value": 0.35}}
CACHES = DRAFT_CACHE | {"high": {"method": "taylorseer", "value": 3}}
CACHES_BY_METHOD = {"first_block": 0.35, "taylorseer": 3}


def profile(**values) -> dict:
    return {"compile": False, "dynamic": False, "attention": "sdpa", "cache": {}, "lora_rank": 0} | values


@pytest.fixture(scope="module")
def plain(tiny_flux_dir: Path) -> FluxEngine:
    return FluxEngine(tiny_flux_dir, device="cpu")


@pytest.fixture(scope="module")
def loras(tiny_flux_dir: Path, tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("loras")
    return [make_lora("flux", tiny_flux_dir, folder / f"style-{seed}", seed=seed) for seed in (1, 2)]


@pytest.fixture(scope="module")
def compiled(tiny_flux_dir: Path, tmp_path_factory) -> FluxEngine:
    cache_dir = str(tmp_path_factory.mktemp("inductor"))
    speed = profile(compile=True, lora_rank=8, lora_slots=2, cache=DRAFT_CACHE, cache_dir=cache_dir)
    return FluxEngine(tiny_flux_dir, device="cpu", speed=speed)


@pytest.mark.parametrize("quality", ["draft", "high"])
def test_a_step_cache_draws_close_to_the_uncached_image_and_skips_blocks(tiny_flux_dir, quality) -> None:
    engine = FluxEngine(tiny_flux_dir, device="cpu", speed=profile(cache=CACHES))
    last_block = engine.pipe.transformer.single_transformer_blocks[-1].attn.to_q
    calls = []
    last_block.register_forward_hook(lambda *args: calls.append(1))
    for seed in (3, 11, 29):
        calls.clear()
        uncached = render(engine, seeds=[seed], steps=8, quality="standard")
        full = len(calls)
        calls.clear()
        cached = render(engine, seeds=[seed], steps=8, quality=quality)
        assert len(calls) < full, "the cache skipped no step"
        assert psnr(uncached, cached) >= CACHE_PSNR_FLOOR
    label = {"draft": "First Block Cache at 0.35", "high": "TaylorSeer every 3 steps"}[quality]
    assert engine.speed_record(quality)["cache"] == label
    assert engine.speed_record("standard")["cache"] == ""


@pytest.mark.parametrize(
    ("family", "method", "value"),
    # FLUX.1's caches are drawn above, with the quality guard.
    [
        (f, method, CACHES_BY_METHOD[method])
        for f, methods in CACHE_METHODS.items()
        if f != "flux"
        for method in methods
    ],
)
def test_each_family_runs_the_step_caches_it_offers(family, method, value, tmp_path_factory) -> None:
    folder = TINY_BUILDERS[family](tmp_path_factory.mktemp(family) / family)
    engine = engine_class(family)(
        folder, device="cpu", speed=profile(cache={"draft": {"method": method, "value": value}})
    )
    assert psnr(render(engine, steps=8), render(engine, steps=8, quality="draft")) >= CACHE_PSNR_FLOOR


def test_attention_the_machine_cannot_run_falls_back_to_sdpa_with_one_log_line(tiny_flux_dir, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="generation.engine.speed"):
        engine = FluxEngine(tiny_flux_dir, device="cpu", speed=profile(attention="flash"))
    assert engine.speed_record("standard")["attention"] == "sdpa"
    message = "flash attention is not available here (it needs a CUDA GPU); using SDPA"
    assert [r.getMessage() for r in caplog.records] == [message]


def test_auto_attention_on_a_cpu_is_sdpa_without_a_warning(tiny_flux_dir, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="generation.engine.speed"):
        engine = FluxEngine(tiny_flux_dir, device="cpu", speed=profile(attention="auto"))
    assert engine.speed_record("standard")["attention"] == "sdpa"
    assert not caplog.records


def test_a_compiled_model_swaps_loras_and_strengths_without_recompiling(compiled, plain, loras) -> None:
    first = render(compiled, loras=[LoraSpec(loras[0], 1.0)])  # compiles here, once
    assert compiled.speed_record("standard") == {"compiled": True, "attention": "sdpa", "cache": "", "hotswap": 8}
    with torch._dynamo.config.patch(error_on_recompile=True):
        second = render(compiled, loras=[LoraSpec(loras[1], 1.0)])
        both = render(compiled, loras=[LoraSpec(loras[0], 0.5), LoraSpec(loras[1], 1.0)])
        none = render(compiled)
        again = render(compiled, loras=[LoraSpec(loras[0], 1.0)])
        draft = render(compiled, loras=[LoraSpec(loras[0], 1.0)], quality="draft")  # cached, run eager
        after = render(compiled, loras=[LoraSpec(loras[1], 1.0)])
    # Each LoRA draws what it draws on the uncompiled model; none at all draws the base model.
    assert psnr(first, render(plain, loras=[LoraSpec(loras[0], 1.0)])) >= 30
    assert psnr(second, render(plain, loras=[LoraSpec(loras[1], 1.0)])) >= 30
    assert psnr(both, render(plain, loras=[LoraSpec(loras[0], 0.5), LoraSpec(loras[1], 1.0)])) >= 30
    assert psnr(none, render(plain)) >= 30
    assert psnr(again, first) >= 40 and psnr(after, second) >= 40
    assert psnr(first, none) < 30  # the LoRAs do change the picture
    assert np.isfinite(draft).all()


def test_more_loras_than_slots_fail_the_job_saying_what_to_raise(compiled, loras) -> None:
    from generation.engine.types import EngineError

    with pytest.raises(EngineError, match="raise lora_slots"):
        render(compiled, loras=[LoraSpec(loras[0], 1.0), LoraSpec(loras[1], 1.0), LoraSpec(loras[0], 0.2)])


def test_a_graph_that_does_not_compile_runs_eager_from_then_on(compiled, plain, monkeypatch) -> None:
    calls = []
    real = type(compiled.pipe).__call__

    def failing_once(pipe, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise torch._dynamo.exc.Unsupported("a graph break")
        return real(pipe, **kwargs)

    monkeypatch.setattr(type(compiled.pipe), "__call__", failing_once)
    image = render(compiled)
    assert len(calls) == 2 and not compiled.speed_record("standard")["compiled"]
    assert psnr(image, render(plain)) >= 30


@pytest.mark.parametrize("family", ["sdxl", "sd3"])
def test_hot_swap_slots_draw_what_the_lora_draws_on_a_unet_and_another_transformer(family, tmp_path) -> None:
    from generation.engine.speed import Slots, denoiser_of

    folder = TINY_BUILDERS[family](tmp_path / family)
    lora = make_lora(family, folder, tmp_path / "style", seed=1)
    plain = engine_class(family)(folder, device="cpu")
    slotted = engine_class(family)(folder, device="cpu")
    slotted.speed.slots = Slots.make(slotted.pipe, denoiser_of(slotted.pipe), 8, 1)  # as a compiled load makes them
    assert slotted.speed.slots is not None
    styled = render(slotted, loras=[LoraSpec(lora, 0.8)])
    assert psnr(styled, render(plain, loras=[LoraSpec(lora, 0.8)])) >= 40
    assert psnr(render(slotted), render(plain)) >= 40 and psnr(styled, render(plain)) < 30
