"""The demo brand model shipped in demo/brand-model: installed by the set-up command and on brand."""

from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from generation.training.demo_kit import judge
from generation.training.demo_quality import evaluate

DEMO = Path(settings.STUDIO_DEMO_MODEL_DIR)


def test_the_demo_model_is_in_the_repository_and_small() -> None:
    size = sum(f.stat().st_size for f in DEMO.rglob("*") if f.is_file())
    assert (DEMO / "model_index.json").is_file() and size < 20 * 2**20


def test_it_draws_the_colour_and_shape_asked_for_most_of_the_time() -> None:
    result = evaluate(DEMO, seeds=2, size=128, steps=20)
    rates = f"colour {result.colour_rate:.0%}, shape {result.shape_rate:.0%}, on palette {result.on_palette:.0%}"
    print(f"\ndemo model: {rates}")
    assert result.colour_rate >= 0.8 and result.shape_rate >= 0.6 and result.on_palette >= 0.8


def test_the_judge_reads_the_kits_own_icons() -> None:
    from generation.training.demo_kit import demo_kit

    kit = demo_kit(per_pair=2, seed=5)
    assert all(judge(item.image).colour == item.colour and judge(item.image).shape == item.shape for item in kit)


@pytest.mark.django_db
def test_the_set_up_command_installs_it_beside_the_tiny_model(settings, tmp_path) -> None:
    settings.STUDIO_MODELS_DIR = tmp_path
    out = StringIO()
    call_command("build_default_model", stdout=out)
    assert (tmp_path / "demo-brand" / "model_index.json").is_file()
    assert (tmp_path / "tiny-flux" / "model_index.json").is_file()
    call_command("build_default_model", stdout=out)
    assert "already at" in out.getvalue()


def test_a_few_training_steps_of_the_demo_recipe_run_end_to_end(tmp_path) -> None:
    """The recipe behind the shipped weights, shrunk to seconds: it trains and saves a pipeline."""
    from generation.training.demo_model import Plan, train_demo_model

    folder = train_demo_model(
        tmp_path / "model",
        templates=["{subject}, flat icon"],
        plan=Plan(vae_steps=2, transformer_steps=2, batch=4, per_pair=1),
    )
    assert (folder / "model_index.json").is_file() and (folder / "vae" / "config.json").is_file()
