"""A LoRA run's memory plan on a card: each saver lowers the predicted peak, the plan takes the
first that fits, and the captions are encoded on the CPU where an encoder cannot visit the card."""

import pytest

from generation.devtools.published import components_of, published_models
from generation.memory.cards import card_of
from generation.memory.training import RunSize, Savers, ladder, plan_training, smaller_fit, training_parts


@pytest.fixture(scope="module")
def published():
    return {model["key"]: components_of(model) for model in published_models()}


def test_each_saver_lowers_flux_dev_training_peak(published) -> None:
    card = card_of("h100")
    peaks = [training_parts(published["flux1-dev"], card, RunSize(16, 1024), s)["training"] for s in ladder(card)]
    assert peaks == sorted(peaks, reverse=True) and len(set(peaks)) == len(peaks)
    assert peaks[0] > 40 * 2**30  # the whole pipeline at full precision with plain AdamW: no 24 GB card
    assert peaks[-1] < 16 * 2**30


def test_the_plan_takes_the_fastest_savers_that_fit_the_card(published) -> None:
    flux = published["flux1-dev"]
    assert plan_training(flux, card_of("h100"), RunSize(16, 1024)).savers == Savers()
    a10g = plan_training(flux, card_of("a10g"), RunSize(16, 1024))
    assert a10g.fits and a10g.savers.checkpointing and a10g.savers.base == "int8"
    assert "gradient checkpointing" in a10g.summary() and "NVIDIA A10G" in a10g.summary()
    klein = plan_training(published["flux2-klein-4b"], card_of("t4"), RunSize(16, 512))
    assert klein.fits and klein.savers == Savers(cached_embeddings=True)


def test_an_encoder_too_big_for_the_card_encodes_the_captions_on_the_cpu(published) -> None:
    plan = plan_training(published["hidream-i1-full"], card_of("t4"), RunSize(16, 512))
    assert plan.fits and plan.encode_on_cpu and "captions encoded on the CPU" in plan.summary()
    assert plan.as_json()["encode_on_cpu"] is True


def test_a_run_too_big_for_a_card_is_offered_a_smaller_one_that_fits(published) -> None:
    klein, card = published["flux2-klein-4b"], card_of("4")
    assert not plan_training(klein, card, RunSize(16, 1024)).fits
    smaller = smaller_fit(klein, card, RunSize(16, 1024))
    assert smaller is not None and smaller.fits and smaller.size.resolution < 1024
    assert smaller_fit(published["qwen-image"], card, RunSize(16, 1024)) is None
