"""Words the text encoders never read: CLIP stops at 77 tokens, T5 at the model's
max_sequence_length (the demo model's at 32), and the asset type's template makes prompts long.
The worker says which words were cut, on the job and in the API; the trainer says it on the run."""

from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.management import call_command
from transformers import AutoTokenizer

from generation import runner, services
from generation.engine.prompts import Reader, cut_notes, dropped_text, readers
from generation.models import AssetPreset, GenerationJob, ImageModel
from generation.tokens import token_create

DEMO = Path(settings.STUDIO_DEMO_MODEL_DIR)
LONG = (
    "a flat blue shield icon, Fluent 2 design icon, minimal vector style, solid background, clean geometric "
    "shapes, professional UI icon, Microsoft design language, subtle gradients, centered composition"
)


@pytest.fixture(scope="module")
def t5():
    return AutoTokenizer.from_pretrained(DEMO / "tokenizer_2")


def test_a_prompt_past_the_t5_limit_is_told_which_of_its_own_words_were_dropped(t5) -> None:
    notes = cut_notes(LONG, [Reader("T5", t5, 32)])
    assert len(notes) == 1 and "32 tokens T5 reads" in notes[0]
    # The designer's characters, words outside the demo vocabulary ("UI", "Microsoft") included.
    assert "“UI icon, Microsoft design language" in notes[0]
    assert "shield" not in notes[0].split("never saw")[1]


def test_a_prompt_that_fits_gets_no_note(t5) -> None:
    assert dropped_text(Reader("T5", t5, 32), "a flat blue shield icon") == ""
    assert cut_notes("a flat blue shield icon", [Reader("T5", t5, 32)]) == []


def test_each_family_names_the_encoders_that_read_its_words() -> None:
    clip, t5 = SimpleNamespace(model_max_length=77), object()
    pipe = SimpleNamespace(tokenizer=clip, tokenizer_2=t5, tokenizer_3=t5)
    assert [(r.name, r.limit) for r in readers("flux", pipe, 32)] == [("T5", 32)]  # CLIP: pooled only
    assert [(r.name, r.limit) for r in readers("flux", pipe)] == [("T5", 512)]
    assert [(r.name, r.limit) for r in readers("sdxl", pipe)] == [("CLIP", 77)]
    assert [(r.name, r.limit) for r in readers("sd3", pipe)] == [("CLIP", 77), ("T5", 256)]
    assert readers("qwenimage", pipe) == []


@pytest.mark.django_db
def test_a_demo_job_whose_template_runs_past_32_tokens_says_so_on_its_page_and_in_the_api(
    settings, tmp_path, alice, alice_client
) -> None:
    settings.STUDIO_MODELS_DIR = tmp_path / "models"
    call_command("build_default_model", verbosity=0)
    icon = AssetPreset.objects.get(slug="icon")
    job = services.job_create(
        owner=alice, preset=icon, prompt="a flat blue shield icon", model=ImageModel.objects.get(key="demo-brand")
    )
    runner.run_job(str(job.pk), worker="gpu@test")
    job = GenerationJob.objects.get(pk=job.pk)
    assert job.status == "complete", job.error
    assert len(job.notes) == 1 and "the 32 tokens T5 reads" in job.notes[0]
    assert "high contrast" in job.notes[0]  # the end of the Icon template
    assert "32 tokens T5 reads" in alice_client.get(job.get_absolute_url()).content.decode()
    api = alice_client.__class__(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='t')[1]}")
    assert api.get(f"/api/v1/jobs/{job.pk}").json()["notes"] == job.notes


@pytest.mark.django_db
def test_a_job_on_a_model_whose_prompt_fits_has_no_note(alice, tiny_flux_dir) -> None:
    preset = AssetPreset.objects.get(slug="icon")
    job = services.job_create(
        owner=alice, preset=preset, prompt="a star", model=ImageModel.objects.get(key="tiny-flux"), variations=1
    )
    runner.run_job(str(job.pk), worker="gpu@test")
    job = GenerationJob.objects.get(pk=job.pk)
    assert job.status == "complete", job.error
    assert job.notes == []
