"""A model entry's speed profile: its shape checked on save, what the workers' cards cannot run
refused there with the reason, and how one worker resolves it for its device and LoRAs."""

import json

import pytest

from generation.engine.options import option_errors
from generation.memory.cards import card_of
from generation.models import BrandLora, ImageModel
from generation.speed.profile import card_problems, resolve, summary
from generation.speed.registry import largest_lora_rank, speed_for
from tests.admin_forms import admin_change
from tests.loras import write_lora


@pytest.mark.parametrize(
    ("speed", "message"),
    [
        ({"compile": "yes"}, "compile is one of off, gpu, always, not 'yes'"),
        ({"attention": "xformers"}, "attention is one of auto, sdpa, flash, flash_3, sage, cudnn"),
        ({"cache": {"draft": {"method": "first_block", "value": 5}}}, "first_block takes a value from 0.01 to 1"),
        ({"cache": {"preview": {"method": "first_block", "value": 0.3}}}, "cache names quality tiers"),
        ({"cache": {"draft": {"method": "magic", "value": 1}}}, "cache for draft is"),
        ({"lora_rank": 0}, 'lora_rank is "auto" or a whole number from 1 to 256'),
        ({"lora_slots": 9}, "lora_slots is a whole number from 1 to 4"),
        ({"turbo": True}, "has no turbo"),
        ("fast", "is an object"),
    ],
)
def test_a_speed_profile_of_the_wrong_shape_is_refused_with_what_it_takes(speed, message) -> None:
    errors = option_errors("flux", {"speed": speed})
    assert len(errors) == 1 and message in errors[0]


def test_a_step_cache_is_refused_for_a_family_whose_denoiser_takes_none() -> None:
    [error] = option_errors("sdxl", {"speed": {"cache": {"draft": {"method": "first_block", "value": 0.3}}}})
    assert "this family's pipeline runs no step cache" in error
    [error] = option_errors("flux2", {"speed": {"cache": {"draft": {"method": "first_block", "value": 0.3}}}})
    assert "runs taylorseer only, not first_block" in error
    assert option_errors("sdxl", {"speed": {"compile": "gpu", "attention": "auto"}}) == []


def test_attention_a_card_cannot_run_is_named_with_the_card() -> None:
    t4, a10g, h100 = card_of("t4"), card_of("a10g"), card_of("h100")
    assert card_problems({"attention": "flash"}, [t4, a10g]) == [
        "flash attention needs compute capability 8.0 or newer; the NVIDIA T4 has 7.5 (use auto, or sdpa)"
    ]
    assert "exactly" in card_problems({"attention": "flash_3"}, [a10g])[0]
    assert card_problems({"attention": "flash_3"}, [h100]) == []
    assert card_problems({"attention": "auto"}, [t4]) == [] and card_problems({"attention": "sdpa"}, [t4]) == []


def test_compile_on_gpu_only_is_off_on_a_cpu_worker_and_hot_swap_with_it() -> None:
    assert resolve({"compile": "gpu"}, on_gpu=False, sizes=3, lora_rank=16)["compile"] is False
    on_gpu = resolve({"compile": "gpu"}, on_gpu=True, sizes=3, lora_rank=16)
    assert on_gpu["compile"] and on_gpu["dynamic"] and on_gpu["lora_rank"] == 16
    assert resolve({"compile": "always"}, on_gpu=False, sizes=1, lora_rank=0)["dynamic"] is False
    assert resolve({"compile": "always", "lora_rank": 64}, on_gpu=False, sizes=1, lora_rank=8)["lora_rank"] == 64
    assert resolve(None, on_gpu=True, sizes=1, lora_rank=8) | {"cache_dir": ""} == {
        "compile": False,
        "dynamic": False,
        "attention": "auto",
        "cache": {},
        "lora_rank": 0,
        "lora_slots": 1,
        "cache_dir": "",
    }


def test_a_jobs_speed_record_reads_as_words() -> None:
    assert summary({}) == "" and summary({"compiled": False, "attention": "sdpa", "cache": "", "hotswap": 0}) == ""
    record = {"compiled": True, "attention": "flash", "cache": "First Block Cache at 0.35", "hotswap": 16}
    assert summary(record) == "compiled · flash attention · First Block Cache at 0.35 · LoRAs hot-swapped"


@pytest.mark.django_db
def test_the_hot_swap_rank_is_the_largest_of_the_familys_enabled_loras(settings, tmp_path) -> None:
    settings.STUDIO_LORA_ROOT = tmp_path
    write_lora(tmp_path / "flux" / "a.safetensors", {"x.lora_A.weight": (8, 32), "x.lora_B.weight": (32, 8)})
    write_lora(tmp_path / "flux" / "b.safetensors", {"y.lora_down.weight": (32, 64), "y.lora_up.weight": (64, 32)})
    write_lora(tmp_path / "flux" / "off.safetensors", {"z.lora_A.weight": (128, 32), "z.lora_B.weight": (32, 128)})
    BrandLora.objects.bulk_create(
        [
            BrandLora(name="a", family="flux", file="flux/a.safetensors"),
            BrandLora(name="b", family="flux", file="flux/b.safetensors"),
            BrandLora(name="off", family="flux", file="flux/off.safetensors", enabled=False),
            BrandLora(name="gone", family="flux", file="flux/gone.safetensors"),
        ]
    )
    assert largest_lora_rank("flux") == 32 and largest_lora_rank("sdxl") == 0
    model = ImageModel.objects.get(key="tiny-flux")
    model.options = {"speed": {"compile": "always"}}
    assert speed_for(model, on_gpu=False)["lora_rank"] == 32


@pytest.mark.django_db
def test_flash_attention_is_refused_at_save_where_a_worker_has_a_t4(card_admin_client) -> None:
    model = ImageModel.objects.get(key="tiny-flux")
    page = admin_change(
        card_admin_client, model, options=json.dumps({"speed": {"attention": "flash"}})
    ).content.decode()
    assert "speed: flash attention needs compute capability 8.0 or newer; the NVIDIA T4 has 7.5" in page
    assert "speed" not in ImageModel.objects.get(key="tiny-flux").options


@pytest.mark.django_db
def test_a_profile_the_cards_run_is_saved(card_admin_client) -> None:
    speed = {"compile": "gpu", "attention": "auto", "cache": {"draft": {"method": "first_block", "value": 0.35}}}
    admin_change(card_admin_client, ImageModel.objects.get(key="tiny-flux"), options=json.dumps({"speed": speed}))
    assert ImageModel.objects.get(key="tiny-flux").options["speed"] == speed


@pytest.mark.django_db
def test_the_published_models_come_with_a_speed_profile_their_family_runs() -> None:
    published = ImageModel.objects.exclude(repo_id="")
    assert published.count() >= 10
    for model in published:
        assert option_errors(model.family, model.options) == [], model.key
        assert model.options["speed"]["compile"] == "gpu", model.key
    assert ImageModel.objects.get(key="flux-dev").options["speed"]["cache"] == {
        "draft": {"method": "first_block", "value": 0.35}
    }
    assert "cache" not in ImageModel.objects.get(key="flux-schnell").options["speed"]  # distilled: 4 steps
    assert "speed" not in ImageModel.objects.get(key="demo-brand").options  # drawn on CPUs
    assert "speed" not in ImageModel.objects.get(key="tiny-flux").options
