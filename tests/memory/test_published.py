"""The published full-size models, built on the meta device from their configs: each has a plan
that fits a 24 GB card without streaming, and FLUX.1-dev and the commercially usable FLUX.2 klein
4B and Z-Image one that fits a T4 (the brief's cards)."""

import pytest

from generation.devtools.published import components_of, published_models
from generation.memory.cards import CARDS
from generation.memory.plan import Job, plan_for

MODELS = {model["key"]: model for model in published_models()}


@pytest.fixture(scope="module")
def components() -> dict:
    return {key: components_of(model) for key, model in MODELS.items()}


def test_every_published_model_builds_to_its_published_size(components) -> None:
    for key, model in MODELS.items():
        counted = {c.name: c.params for c in components[key]}
        for name, figure in model.get("published_params", {}).items():
            assert abs(counted[name] - figure) / figure < 0.05, (key, name, counted[name], figure)


@pytest.mark.parametrize("card", ["a10g", "l4"])
def test_every_published_model_fits_a_24_gb_card_without_streaming(components, card) -> None:
    for key, parts in components.items():
        plan = plan_for(parts, CARDS[card], Job(1024, 1024))
        assert plan.fits and not plan.sequential, (key, plan.summary())


@pytest.mark.parametrize("key", ["flux1-dev", "flux2-klein-4b", "z-image-turbo"])
def test_flux_dev_and_the_commercial_models_fit_a_t4_without_streaming_or_bf16(components, key) -> None:
    plan = plan_for(components[key], CARDS["t4"], Job(1024, 1024))
    assert plan.fits and not plan.sequential, plan.summary()
    assert all(choice.precision != "bf16" for choice in plan.choices.values())
