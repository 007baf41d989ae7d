"""A LoRA run compares its samples with the base model's at the same prompts and warns on the
run page when the brand's colours drift (the outline experiment's first LoRA turned blue violet)."""

import pytest
from django.test import Client

from generation.devtools.demo_kit import draw_icon
from generation.finishing.plan import Palette
from generation.models import AssetPreset, JobStatus, TrainingRun, TrainingSet
from generation.training.drift import drift, drift_note, look
from tests.factories import PASSWORD, UserFactory

PALETTE = Palette(("#0f6cbd", "#107c10", "#f7630c", "#8764b8"), "#f6f7f9", 10.0)


def test_samples_in_the_base_colours_do_not_drift_even_drawn_thinner() -> None:
    base = [look(draw_icon("blue", "circle", size=128), PALETTE), look(draw_icon("green", "star", size=128), PALETTE)]
    now = [look(draw_icon("blue", "plus", size=128), PALETTE), look(draw_icon("green", "heart", size=128), PALETTE)]
    found = drift(base, now)
    assert found is not None and found["colour_shift"] < 5
    assert drift_note(300, found) == ""


def test_samples_whose_colours_moved_get_a_warning_naming_the_step_and_the_shift() -> None:
    base = [look(draw_icon("blue", "circle", size=128), PALETTE)]
    now = [look(draw_icon("purple", "circle", size=128), PALETTE)]
    note = drift_note(300, drift(base, now))
    assert note.startswith("At step 300 the samples drift from the base model's")
    assert "the ink's colour moved by ΔE" in note and "lower learning rate" in note


def test_a_fall_in_palette_compliance_is_named() -> None:
    found = {"colour_shift": 2.0, "compliance_base": 0.95, "compliance_now": 0.60}
    assert "palette compliance 95% → 60%" in drift_note(10, found)


def test_nothing_comparable_means_no_warning() -> None:
    assert drift([], []) is None and drift_note(5, None) == ""


@pytest.mark.django_db
def test_the_run_page_shows_the_latest_samples_warning_and_labels_the_base_samples() -> None:
    staff = UserFactory(username="staff", is_staff=True)
    client = Client()
    client.login(username=staff.username, password=PASSWORD)
    preset = AssetPreset.objects.get(slug="icon")
    training_set = TrainingSet.objects.create(name="Outline", preset=preset, family="flux")
    run = TrainingRun.objects.create(
        training_set=training_set,
        model_key="demo-brand",
        status=JobStatus.COMPLETE,
        params={"images": [], "steps": 10},
        notes=["12 of 48 captions ... are cut by the text encoder."],
        samples=[
            {"step": 0, "images": [{"file": "training/runs/x/step00000-0.png", "prompt": "a star"}]},
            {"step": 10, "images": [], "warning": "At step 10 the samples drift from the base model's ..."},
        ],
    )
    page = client.get(f"/training/runs/{run.pk}/").content.decode()
    assert "base model</span>" in page and "At step 10 the samples drift" in page
    assert "are cut by the text encoder" in page
