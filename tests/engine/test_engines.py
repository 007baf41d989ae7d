"""Every family's adapter on a tiny, architecture-true pipeline saved to a folder and loaded
with from_pretrained, exactly as real weights are: seeds, batches, progress, cancel, LoRAs."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from generation.devtools.loras import make_lora
from generation.devtools.tiny import TINY_BUILDERS
from generation.engine import ENGINES, EngineError, engine_class
from generation.engine.base import DiffusersEngine
from generation.engine.families import has_img2img, has_inpaint
from generation.engine.types import Cancelled, GenerationRequest, LoraSpec

FAMILIES = sorted(ENGINES)


@pytest.fixture(scope="module", params=FAMILIES)
def family(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def tiny_dir(family: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return TINY_BUILDERS[family](tmp_path_factory.mktemp(family) / "pipeline")


@pytest.fixture(scope="module")
def engine(family: str, tiny_dir: Path) -> DiffusersEngine:
    return engine_class(family)(tiny_dir, device="cpu")


def request(**overrides) -> GenerationRequest:
    values = {"prompt": "a blue circle", "negative_prompt": "blurry", "width": 64, "height": 64}
    values |= {"steps": 2, "guidance_scale": 3.5, "seeds": [1, 2]}
    return GenerationRequest(**(values | overrides))


def generate(engine: DiffusersEngine, req: GenerationRequest, max_batch: int = 8) -> list[np.ndarray]:
    images: dict[int, np.ndarray] = {}

    def on_images(first: int, batch: list) -> None:
        images.update({first + i: np.asarray(img, dtype=np.int16) for i, img in enumerate(batch)})

    engine.generate(req, max_batch=max_batch, on_step=lambda s, t: None, on_images=on_images)
    return [images[i] for i in sorted(images)]


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to float rounding (a batch of 2 and a batch of 1 round differently)."""
    return bool(np.abs(a - b).max() <= 2)


def differ(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.abs(a - b).mean() > 1)


def test_every_family_has_a_tiny_offline_pipeline() -> None:
    assert set(TINY_BUILDERS) == set(ENGINES)


def test_an_unknown_family_is_a_clear_error() -> None:
    with pytest.raises(EngineError, match="No engine for model family 'dalle'"):
        engine_class("dalle")


def test_a_folder_without_a_pipeline_is_a_clear_error(family: str, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="model_index.json is missing"):
        engine_class(family)(tmp_path, device="cpu")


def test_it_renders_one_image_per_seed_at_the_requested_size(engine: DiffusersEngine) -> None:
    images = generate(engine, request(width=128, height=64, seeds=[1, 2, 3]))
    assert [img.shape for img in images] == [(64, 128, 3)] * 3


def test_the_same_seed_gives_the_same_image_and_other_seeds_differ(engine: DiffusersEngine) -> None:
    first, second = generate(engine, request(seeds=[7, 8]))
    again = generate(engine, request(seeds=[7]))[0]
    assert close(first, again)
    assert differ(first, second)


def test_batches_split_by_max_batch_give_the_same_images(engine: DiffusersEngine) -> None:
    together = generate(engine, request(seeds=[1, 2, 3]))
    split = generate(engine, request(seeds=[1, 2, 3]), max_batch=2)
    assert all(close(a, b) for a, b in zip(together, split, strict=True))


def test_progress_reports_every_step_of_every_batch(engine: DiffusersEngine) -> None:
    steps: list[tuple[int, int]] = []
    engine.generate(
        request(seeds=[1, 2, 3]), max_batch=2, on_step=lambda s, t: steps.append((s, t)), on_images=lambda f, i: None
    )
    assert steps == [(1, 2), (2, 2)] * 2


def test_raising_cancelled_in_the_step_callback_stops_the_job(engine: DiffusersEngine) -> None:
    stored: list[int] = []

    def on_step(step: int, total: int) -> None:
        if stored:  # cancel during the second batch
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        engine.generate(request(seeds=[1, 2]), max_batch=1, on_step=on_step, on_images=lambda f, i: stored.append(f))
    assert stored == [0]


def test_more_like_this_starts_from_the_given_image_where_the_family_can(engine: DiffusersEngine) -> None:
    from PIL import Image

    red, noise = Image.new("RGB", (64, 64), (255, 0, 0)), Image.effect_noise((64, 64), 120).convert("RGB")
    req = request(seeds=[5], steps=4, init_image=red, strength=0.5)
    if not engine.supports_img2img:
        with pytest.raises(EngineError, match="cannot start from an image"):
            generate(engine, req)
        return
    from_red = generate(engine, req)[0]
    assert close(from_red, generate(engine, req)[0])  # reproducible
    assert from_red.shape == (64, 64, 3)
    # Tiny random VAEs blur much of the input away: "not equal" is the check, not "very different".
    assert not close(from_red, generate(engine, request(seeds=[5], steps=4, init_image=noise, strength=0.5))[0])
    assert not close(from_red, generate(engine, request(seeds=[5], steps=4))[0])  # not plain text-to-image


def test_the_web_side_knows_which_families_can_start_from_an_image(engine: DiffusersEngine) -> None:
    assert has_img2img(engine.family) == engine.supports_img2img
    assert has_inpaint(engine.family) == (engine.inpaint_class is not None)


def test_inpaint_repaints_a_mask_on_the_loaded_weights_where_the_family_can(engine: DiffusersEngine) -> None:
    from PIL import Image

    red = Image.new("RGB", (64, 64), (255, 0, 0))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    req = request(seeds=[5], steps=4, init_image=red, mask_image=mask)
    if engine.inpaint_class is None:
        with pytest.raises(EngineError, match="cannot repaint part of an image"):
            generate(engine, req)
        return
    repainted = generate(engine, req)[0]
    assert repainted.shape == (64, 64, 3) and close(repainted, generate(engine, req)[0])  # reproducible
    assert not close(repainted, generate(engine, request(seeds=[5], steps=4))[0])  # not plain text-to-image
    # The twin shares the base's modules (from_pipe): nothing loaded twice, LoRAs apply to both.
    shared = [name for name, module in engine.inpaint_pipe.components.items() if module is not None]
    assert all(engine.inpaint_pipe.components[n] is engine.pipe.components.get(n) for n in shared if n != "scheduler")
    with pytest.raises(EngineError, match="needs the image it repaints"):
        generate(engine, request(seeds=[5], steps=4, mask_image=mask))


def test_img2img_reports_only_the_steps_its_strength_runs(engine: DiffusersEngine) -> None:
    from PIL import Image

    if not engine.supports_img2img:
        pytest.skip(f"{engine.family} has no img2img")
    steps: list[tuple[int, int]] = []
    req = request(seeds=[5], steps=8, init_image=Image.new("RGB", (64, 64), "white"), strength=0.5)
    engine.generate(req, max_batch=1, on_step=lambda s, t: steps.append((s, t)), on_images=lambda f, i: None)
    assert steps and steps[-1][0] == steps[-1][1] < 8


def test_sizes_off_the_latent_grid_are_refused(engine: DiffusersEngine) -> None:
    with pytest.raises(EngineError, match="multiples of"):
        generate(engine, request(width=100))


def test_loras_change_the_image_switch_and_leave_no_trace(family, engine, tiny_dir, tmp_path) -> None:
    style = make_lora(family, tiny_dir, tmp_path / "style", seed=1)
    subject = make_lora(family, tiny_dir, tmp_path / "subject", seed=2)
    before = generate(engine, request(seeds=[5]))[0]
    styled = generate(engine, request(seeds=[5], loras=[LoraSpec(style, 1.0)]))[0]
    switched = generate(engine, request(seeds=[5], loras=[LoraSpec(subject, 1.0)]))[0]
    combined = generate(engine, request(seeds=[5], loras=[LoraSpec(style, 0.7), LoraSpec(subject, 0.5)]))[0]
    after = generate(engine, request(seeds=[5]))[0]
    assert differ(before, styled) and differ(styled, switched) and differ(combined, styled)
    assert np.array_equal(before, after)


def test_a_missing_lora_file_is_a_clear_error(engine: DiffusersEngine, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="does not exist"):
        generate(engine, request(loras=[LoraSpec(tmp_path / "nope.safetensors", 0.8)]))


def test_out_of_memory_halves_the_batch_then_gives_a_readable_error(tiny_flux_dir, monkeypatch) -> None:
    engine = engine_class("flux")(tiny_flux_dir, device="cpu")
    batches: list[int] = []

    def run(req, seeds, on_step, **kwargs):
        batches.append(len(seeds))
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(engine, "_run", run)
    with pytest.raises(EngineError, match="Out of GPU memory for one 64x64 image"):
        generate(engine, request(seeds=[1, 2, 3, 4]))
    assert batches == [4, 2, 1]


GB = 2**30


@pytest.mark.parametrize(
    ("total", "largest", "card", "mode"),
    [
        (7 * GB, 5 * GB, 16 * GB, "gpu"),  # SDXL fp16 on a T4
        (26 * GB, 16 * GB, 24 * GB, "model_offload"),  # SD3.5 Large fp16 on an A10G
        (34 * GB, 24 * GB, 24 * GB, "sequential_offload"),  # FLUX.1 bf16 on an A10G
        (60 * GB, 34 * GB, 80 * GB, "gpu"),  # HiDream-I1 on an H100
    ],
)
def test_auto_memory_mode_picks_the_fastest_placement_that_fits(total, largest, card, mode) -> None:
    from generation.engine.devices import choose_memory_mode

    assert choose_memory_mode(total, largest, card) == mode


def test_an_unknown_memory_mode_is_a_clear_error(tiny_flux_dir) -> None:
    with pytest.raises(EngineError, match="Unknown memory mode 'turbo'"):
        engine_class("flux")(tiny_flux_dir, device="cpu", options={"memory_mode": "turbo"})


def test_a_kohya_sdxl_lora_loads_and_changes_the_image(tmp_path) -> None:
    from safetensors.torch import save_file

    engine = engine_class("sdxl")(TINY_BUILDERS["sdxl"](tmp_path / "sdxl"), device="cpu")
    torch.manual_seed(0)
    name = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q"
    save_file(
        {
            f"{name}.lora_down.weight": torch.randn(4, 32),
            f"{name}.lora_up.weight": torch.randn(32, 4) * 3,
            f"{name}.alpha": torch.tensor(4.0),
        },
        tmp_path / "kohya.safetensors",
    )
    plain = generate(engine, request(seeds=[5]))[0]
    styled = generate(engine, request(seeds=[5], loras=[LoraSpec(tmp_path / "kohya.safetensors", 1.0)]))[0]
    assert differ(plain, styled)


def test_hidream_takes_its_llama_encoder_from_the_entrys_options(tmp_path) -> None:
    """The HiDream repos ship without text_encoder_4; the entry names where Llama is."""
    import shutil

    folder = TINY_BUILDERS["hidream"](tmp_path / "hidream")
    llama = tmp_path / "llama"
    shutil.move(folder / "text_encoder_4", llama)
    for file in (folder / "tokenizer_4").iterdir():
        shutil.move(file, llama / file.name)
    shutil.rmtree(folder / "tokenizer_4")
    with pytest.raises(EngineError, match="no text_encoder_4"):
        engine_class("hidream")(folder, device="cpu")
    engine = engine_class("hidream")(folder, device="cpu", options={"llama": str(llama)})
    assert generate(engine, request(seeds=[1]))[0].shape == (64, 64, 3)


def test_a_model_with_a_native_size_draws_there_and_returns_its_render_size(tiny_flux_dir) -> None:
    # Bringing the render to the size asked is finishing's size stage (generation/finishing/upscale.py).
    native = engine_class("flux")(tiny_flux_dir, device="cpu", options={"native_size": 32})
    plain = engine_class("flux")(tiny_flux_dir, device="cpu")
    rendered = generate(native, request(seeds=[3], width=64, height=64))[0]
    drawn = generate(plain, request(seeds=[3], width=32, height=32))[0]
    assert rendered.shape == (32, 32, 3) and close(rendered, drawn)
    assert native.render_size(128, 64) == (32, 16) and native.render_size(16, 16) == (16, 16)


def test_a_flux_model_trained_on_short_text_runs_on_short_text(tiny_flux_dir) -> None:
    engine = engine_class("flux")(tiny_flux_dir, device="cpu", options={"max_sequence_length": 16})
    assert engine.call_kwargs(request())["max_sequence_length"] == 16
    assert len(generate(engine, request(seeds=[1]))) == 1


def test_a_flux_model_with_true_cfg_runs_two_passes_a_step_against_the_negative_prompt(tiny_flux_dir) -> None:
    plain = engine_class("flux")(tiny_flux_dir, device="cpu")
    guided = engine_class("flux")(tiny_flux_dir, device="cpu", options={"true_cfg_scale": 1.75})
    assert "negative_prompt" not in plain.call_kwargs(request(negative_prompt="clutter"))
    assert guided.call_kwargs(request(negative_prompt="clutter")) | {"guidance_scale": 0} == {
        "guidance_scale": 0,
        "true_cfg_scale": 1.75,
        "negative_prompt": "clutter",
    }
    masked = request(negative_prompt="clutter", mask_image=Image.new("L", (64, 64), 255))
    assert "true_cfg_scale" not in guided.call_kwargs(masked)  # an inpaint keeps more without it
    calls = []
    hook = guided.pipe.transformer.register_forward_hook(lambda *_: calls.append(1))
    against_clutter = generate(guided, request(seeds=[2], steps=3, negative_prompt="clutter"))[0]
    hook.remove()
    assert len(calls) == 6  # each step with the prompt and with the negative prompt
    unguided = generate(plain, request(seeds=[2], steps=3))[0]
    assert differ(against_clutter, unguided)
    # Against the prompt itself there is nothing to push from: the unguided image.
    assert close(generate(guided, request(seeds=[2], steps=3, negative_prompt="a blue circle"))[0], unguided)


@pytest.mark.parametrize("guidance", [1.0, 3.5])
def test_a_job_records_its_negative_prompt_exactly_where_the_familys_call_acts_on_it(
    engine: DiffusersEngine, family: str, guidance: float
) -> None:
    """The web side decides from engine/families.py what a job records (it cannot import the
    adapters); the adapters' call arguments must agree, for every family, guidance and option."""
    from generation.engine.families import uses_negative_prompt

    def acts(kwargs: dict) -> bool:
        negative = kwargs.get("negative_prompt")
        scale = kwargs.get("true_cfg_scale", kwargs.get("guidance_scale", 0))
        return bool(negative and negative.strip()) and scale > 1

    kept = engine.options
    try:
        for options in ({}, {"true_cfg_scale": 1.5}):
            engine.options = options
            for mask in (None, Image.new("L", (64, 64), 255)):
                call = engine.call_kwargs(request(guidance_scale=guidance, mask_image=mask))
                expected = uses_negative_prompt(family, options, guidance, masked=mask is not None)
                assert acts(call) == expected, (options, mask is not None)
    finally:
        engine.options = kept
