"""The FLUX adapter on a tiny, architecture-true pipeline loaded with from_pretrained from a folder."""

from pathlib import Path

import numpy as np
import pytest
import torch

from generation.engine import EngineError, engine_class
from generation.engine.flux import FluxEngine
from generation.engine.types import Cancelled, GenerationRequest, LoraSpec


@pytest.fixture(scope="module")
def engine(tiny_flux_dir: Path) -> FluxEngine:
    return FluxEngine(tiny_flux_dir, device="cpu")


def request(**overrides) -> GenerationRequest:
    values = {"prompt": "a blue circle", "negative_prompt": "", "width": 64, "height": 64}
    values |= {"steps": 3, "guidance_scale": 3.5, "seeds": [1, 2]}
    values.update(overrides)
    return GenerationRequest(**values)


def generate(engine: FluxEngine, req: GenerationRequest, max_batch: int = 8) -> list[np.ndarray]:
    images: dict[int, np.ndarray] = {}

    def on_images(first: int, batch: list) -> None:
        images.update({first + i: np.asarray(img, dtype=np.int16) for i, img in enumerate(batch)})

    engine.generate(req, max_batch=max_batch, on_step=lambda s, t: None, on_images=on_images)
    return [images[i] for i in sorted(images)]


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to float rounding (a batch of 2 and a batch of 1 round differently)."""
    return bool(np.abs(a - b).max() <= 2)


def test_the_registry_finds_the_flux_adapter_by_name() -> None:
    assert engine_class("flux") is FluxEngine


def test_an_unknown_family_is_a_clear_error() -> None:
    with pytest.raises(EngineError, match="No engine for model family 'dalle'"):
        engine_class("dalle")


def test_a_folder_without_a_pipeline_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="model_index.json is missing"):
        FluxEngine(tmp_path, device="cpu")


def test_it_renders_one_image_per_seed_at_the_requested_size(engine: FluxEngine) -> None:
    images = generate(engine, request(width=128, height=64, seeds=[1, 2, 3]))
    assert [img.shape for img in images] == [(64, 128, 3)] * 3


def test_the_same_seed_gives_the_same_image_and_other_seeds_differ(engine: FluxEngine) -> None:
    first, second = generate(engine, request(seeds=[7, 8]))
    again = generate(engine, request(seeds=[7]))[0]
    assert close(first, again)
    assert np.abs(first - second).mean() > 5


def test_batches_split_by_max_batch_give_the_same_images(engine: FluxEngine) -> None:
    together = generate(engine, request(seeds=[1, 2, 3, 4]))
    split = generate(engine, request(seeds=[1, 2, 3, 4]), max_batch=2)
    assert all(close(a, b) for a, b in zip(together, split, strict=True))


def test_progress_reports_every_step_of_every_batch(engine: FluxEngine) -> None:
    steps: list[tuple[int, int]] = []
    engine.generate(
        request(seeds=[1, 2, 3]), max_batch=2, on_step=lambda s, t: steps.append((s, t)), on_images=lambda f, i: None
    )
    assert steps == [(1, 3), (2, 3), (3, 3)] * 2


def test_raising_cancelled_in_the_step_callback_stops_the_job(engine: FluxEngine) -> None:
    stored: list[int] = []

    def on_step(step: int, total: int) -> None:
        if stored:  # cancel during the second batch
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        engine.generate(request(seeds=[1, 2]), max_batch=1, on_step=on_step, on_images=lambda f, i: stored.append(f))
    assert stored == [0]


def test_sizes_that_are_not_multiples_of_16_are_refused(engine: FluxEngine) -> None:
    with pytest.raises(EngineError, match="multiples of 16"):
        generate(engine, request(width=100))


def test_out_of_memory_halves_the_batch_then_gives_a_readable_error(engine: FluxEngine, monkeypatch) -> None:
    batches: list[int] = []

    def run(req, seeds, on_step):
        batches.append(len(seeds))
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(engine, "_run", run)
    with pytest.raises(EngineError, match="Out of GPU memory for one 64x64 image"):
        generate(engine, request(seeds=[1, 2, 3, 4]))
    assert batches == [4, 2, 1]


def make_lora(tiny_flux_dir: Path, folder: Path) -> Path:
    from diffusers import FluxPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = FluxPipeline.from_pretrained(tiny_flux_dir)
    torch.manual_seed(0)
    pipe.transformer.add_adapter(
        LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False)
    )
    FluxPipeline.save_lora_weights(folder, transformer_lora_layers=get_peft_model_state_dict(pipe.transformer))
    return folder / "pytorch_lora_weights.safetensors"


def test_a_lora_changes_the_image_and_leaves_no_trace_on_the_next_job(
    engine: FluxEngine, tiny_flux_dir: Path, tmp_path: Path
) -> None:
    lora = make_lora(tiny_flux_dir, tmp_path)
    before = generate(engine, request(seeds=[5]))[0]
    styled = generate(engine, request(seeds=[5], loras=[LoraSpec(lora, 1.0)]))[0]
    after = generate(engine, request(seeds=[5]))[0]
    assert not np.array_equal(before, styled)
    assert np.array_equal(before, after)


def test_a_missing_lora_file_is_a_clear_error(engine: FluxEngine, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="does not exist"):
        generate(engine, request(loras=[LoraSpec(tmp_path / "nope.safetensors", 0.8)]))
