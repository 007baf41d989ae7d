"""Memory plans from component sizes: the fastest arrangement that fits each card."""

import pytest

from generation.memory.cards import CARDS, CardError, card_of, cards_of
from generation.memory.components import Component, folder_components
from generation.memory.plan import Choice, Job, PlanError, fit_together, plan_for, weight_bytes

B = 10**9
# FLUX.1-dev's parts, counted on the meta device from its published configs (scripts/memory_plan.py).
FLUX_DEV = [
    Component("text_encoder", "CLIPTextModel", int(0.123 * B), int(0.085 * B)),
    Component("text_encoder_2", "T5EncoderModel", int(4.762 * B), int(4.630 * B)),
    Component("transformer", "FluxTransformer2DModel", int(11.901 * B), int(11.85 * B), width=3072),
    Component("vae", "AutoencoderKL", int(0.084 * B), int(0.001 * B)),
]
SMALL = [
    Component("text_encoder", "CLIPTextModel", int(0.123 * B), int(0.085 * B)),
    Component("transformer", "ZImageTransformer2DModel", int(2 * B), int(1.9 * B), width=2048),
    Component("vae", "AutoencoderKL", int(0.084 * B), int(0.001 * B)),
]


def test_a_model_that_fits_stays_whole_on_the_card_in_its_half_precision() -> None:
    plan = plan_for(SMALL, CARDS["a10g"])
    assert plan.fits and not plan.vae_tiling
    assert set(plan.choices.values()) == {Choice("bf16")}


def test_flux_dev_on_a_t4_computes_in_fp16_with_int8_weights_and_never_t5_in_fp16() -> None:
    plan = plan_for(FLUX_DEV, CARDS["t4"])
    assert plan.fits and not plan.sequential and plan.peak_bytes <= CARDS["t4"].usable_bytes
    assert plan.choices["transformer"].precision in ("int8", "nf4")
    assert plan.choices["text_encoder_2"].precision != "fp16"  # T5 overflows in fp16
    assert plan.choices["vae"].precision == "fp32"  # no bf16 on a T4: the VAE decodes in fp32
    assert all(choice.precision != "bf16" for choice in plan.choices.values())


def test_fp8_is_chosen_only_on_cards_that_compute_it() -> None:
    assert plan_for(FLUX_DEV, CARDS["l4"]).choices["transformer"] == Choice("fp8")
    assert plan_for(FLUX_DEV, CARDS["a10g"]).choices["transformer"].precision == "int8"


def test_a_large_card_keeps_everything_unquantized() -> None:
    plan = plan_for(FLUX_DEV, CARDS["h100"])
    assert set(plan.choices.values()) == {Choice("bf16")}


def test_a_model_too_large_for_any_quantization_falls_to_sequential_offload() -> None:
    huge = [Component("transformer", "FluxTransformer2DModel", 200 * B, 199 * B, width=8192)]
    plan = plan_for(huge, card_of("16"))
    assert plan.sequential and plan.fits


def test_two_models_stay_on_one_card_only_where_each_runs_beside_the_others_weights() -> None:
    """A worker holds more than one model only where their plans fit the card together (worker/engines)."""
    for card, together in (("t4", False), ("a10g", False), ("h100", True)):
        small, flux = plan_for(SMALL, CARDS[card]), plan_for(FLUX_DEV, CARDS[card])
        assert fit_together([small, small, small]) and fit_together([flux])
        assert fit_together([small, flux]) is together, card
        assert small.resident_bytes < small.peak_bytes


def test_quantization_reaches_linear_layers_only() -> None:
    transformer = FLUX_DEV[2]
    rest = transformer.params - transformer.linear_params
    assert weight_bytes(transformer, "nf4", "bf16") == int(transformer.linear_params * 0.5625 + rest * 2)
    assert weight_bytes(transformer, "bf16", "bf16") == transformer.params * 2


def test_a_bigger_job_needs_more_and_tiles_the_vae_when_it_must() -> None:
    small, large = plan_for(SMALL, card_of("8"), Job(512, 512)), plan_for(SMALL, card_of("8"), Job(4096, 4096))
    assert large.peak_bytes > small.peak_bytes and large.vae_tiling and not small.vae_tiling


class TestOverrides:
    def test_an_override_fixes_a_component_and_the_rest_is_planned_around_it(self) -> None:
        plan = plan_for(FLUX_DEV, CARDS["h100"], overrides={"text_encoder_2": {"precision": "int8"}})
        assert plan.choices["text_encoder_2"] == Choice("int8") and plan.choices["transformer"] == Choice("bf16")

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"unet": {"precision": "int8"}}, "no component 'unet'"),
            ({"transformer": {"precision": "int4"}}, "precision is one of"),
            ({"transformer": {"placement": "disk"}}, "placement is one of"),
            ({"transformer": "int8"}, 'takes {"precision"'),
            ({"transformer": {"precision": "fp8"}}, "fp8 needs compute capability 8.9"),
            ({"transformer": {"precision": "bf16"}}, "has no bf16"),
        ],
    )
    def test_an_override_the_card_cannot_run_is_refused_with_the_reason(self, overrides, message) -> None:
        with pytest.raises(PlanError, match=message):
            plan_for(FLUX_DEV, CARDS["t4"], overrides=overrides)

    def test_an_override_that_does_not_fit_is_reported_as_not_fitting(self) -> None:
        plan = plan_for(FLUX_DEV, CARDS["t4"], overrides={"transformer": {"precision": "fp16", "placement": "gpu"}})
        assert not plan.fits


class TestCards:
    def test_cards_are_named_or_given_in_gb(self) -> None:
        assert [c.key for c in cards_of("t4, a10g,20gb")] == ["t4", "a10g", "20gb"]
        assert card_of("t4").compute == "fp16" and card_of("h100").fp8 and not card_of("a100-40").fp8

    @pytest.mark.parametrize("text", ["0", "10000", "gtx", "-4", "1e9"])
    def test_a_card_of_no_or_absurd_size_is_refused(self, text) -> None:
        with pytest.raises(CardError):
            card_of(text)


def test_a_folders_components_are_weighed_from_their_headers_alone(tiny_flux_dir) -> None:
    components = {c.name: c for c in folder_components(tiny_flux_dir)}
    assert set(components) >= {"transformer", "vae", "text_encoder", "text_encoder_2"}
    transformer = components["transformer"]
    assert transformer.role == "denoiser" and 0 < transformer.linear_params < transformer.params
    assert transformer.width == 32  # 2 heads of 16
    assert components["text_encoder_2"].overflows_in_fp16
