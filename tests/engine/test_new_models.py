"""The models round 3 adds: SDXL Turbo and Playground v2.5 (SDXL's architecture, each with its own
scheduler and defaults) and Chroma1-HD (a family of its own; the family-wide engine tests run its
tiny pipeline too, tests/engine/test_engines.py)."""

import numpy as np
import pytest

from generation.devtools.tiny import build_tiny_chroma, build_tiny_playground, build_tiny_sdxl_turbo
from generation.engine.chroma import ChromaEngine
from generation.engine.families import uses_negative_prompt
from generation.engine.sdxl import SDXLEngine
from generation.engine.types import GenerationRequest
from generation.jobs import recipe
from generation.models import AssetPreset, ImageModel


def render(engine, steps: int, guidance: float, **extra) -> np.ndarray:
    images: list = []
    values = {"prompt": "a blue circle", "negative_prompt": "blurry", "width": 64, "height": 64, "seeds": [3]}
    request = GenerationRequest(**(values | {"steps": steps, "guidance_scale": guidance} | extra))
    engine.generate(request, max_batch=1, on_step=lambda s, t: None, on_images=lambda f, b: images.extend(b))
    return np.asarray(images[0], dtype=np.float64)


def test_sdxl_turbo_draws_in_one_step_without_guidance(tmp_path) -> None:
    engine = SDXLEngine(build_tiny_sdxl_turbo(tmp_path / "turbo"), device="cpu")
    steps: list[int] = []
    request = GenerationRequest(
        prompt="a", negative_prompt="", width=64, height=64, steps=1, guidance_scale=0.0, seeds=[1]
    )
    engine.generate(request, max_batch=1, on_step=lambda s, t: steps.append(t), on_images=lambda f, b: None)
    assert steps == [1] and type(engine.pipe.scheduler).__name__ == "EulerAncestralDiscreteScheduler"


def test_playground_runs_its_edm_schedule_with_its_latent_statistics(tmp_path) -> None:
    engine = SDXLEngine(build_tiny_playground(tmp_path / "playground"), device="cpu")
    assert type(engine.pipe.scheduler).__name__ == "EDMDPMSolverMultistepScheduler"
    assert engine.pipe.vae.config.latents_mean is not None
    image = render(engine, steps=3, guidance=3.0)
    assert np.isfinite(image).all() and 0 < image.mean() < 255


def test_chroma_acts_on_the_negative_prompt_with_guidance(tmp_path) -> None:
    engine = ChromaEngine(build_tiny_chroma(tmp_path / "chroma"), device="cpu")
    with_negative = render(engine, steps=2, guidance=4.0)
    other = render(engine, steps=2, guidance=4.0, negative_prompt="a red square")
    assert np.abs(with_negative - other).mean() > 0.1  # the negative prompt changes the image
    assert uses_negative_prompt("chroma", {}, 4.0) and not uses_negative_prompt("chroma", {}, 1.0)


@pytest.mark.django_db
@pytest.mark.parametrize("quality", ["draft", "standard", "high", "ultra"])
def test_sdxl_turbo_keeps_its_few_steps_and_no_guidance_whatever_the_asset_type(quality) -> None:
    turbo = ImageModel.objects.get(key="sdxl-turbo")
    for preset in AssetPreset.objects.all():
        params = recipe.resolve_params(
            preset=preset, model=turbo, prompt="x", quality=quality, variations=1, width=512, height=512, seed=1
        )
        assert params["steps"] <= 4 and params["guidance_scale"] == 0.0, (preset.slug, params["steps"])


@pytest.mark.django_db
def test_the_new_entries_are_listed_with_their_licenses() -> None:
    entries = {m.key: m for m in ImageModel.objects.filter(key__in=["sdxl-turbo", "playground-v25", "chroma1-hd"])}
    assert entries["chroma1-hd"].commercial_use and entries["chroma1-hd"].family == "chroma"
    assert not entries["sdxl-turbo"].enabled and entries["sdxl-turbo"].options["native_size"] == 512
    assert entries["playground-v25"].family == "sdxl" and entries["playground-v25"].license_notice
