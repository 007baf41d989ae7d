"""Words the text encoders never read: CLIP stops at 77 tokens, T5 at the model's
max_sequence_length (the demo model's at 32), and the asset type's template makes prompts long.
The worker says which words were cut, on the job and in the API; the trainer says it on the run."""

from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.management import call_command
from transformers import AutoTokenizer

from generation.engine.prompts import Reader, cut_notes, dropped_text, readers
from generation.jobs import submit
from generation.models import AssetPreset, GenerationJob, ImageModel
from generation.tokens import token_create
from generation.worker import run as worker_run

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


LONG_DESCRIPTION = (
    "a flat blue shield icon with a small checkmark in the middle and a thin border around the edge, "
    "drawn for the security settings page of the admin console"
)


@pytest.mark.django_db
def test_a_demo_job_whose_own_description_is_cut_says_so_on_its_page_and_in_the_api(
    settings, tmp_path, alice, alice_client
) -> None:
    settings.STUDIO_MODELS_DIR = tmp_path / "models"
    call_command("build_default_model", verbosity=0)
    icon, demo = AssetPreset.objects.get(slug="icon"), ImageModel.objects.get(key="demo-brand")
    long = submit.job_create(owner=alice, preset=icon, prompt=LONG_DESCRIPTION, model=demo, variations=1)
    short = submit.job_create(owner=alice, preset=icon, prompt="a flat blue shield icon", model=demo, variations=1)
    for job in (long, short):
        worker_run.run_job(str(job.pk), worker="gpu@test")
    long, short = GenerationJob.objects.get(pk=long.pk), GenerationJob.objects.get(pk=short.pk)
    assert long.status == "complete", long.error
    assert len(long.notes) == 1 and long.notes[0].startswith("Your description is cut: T5 reads 32 tokens")
    assert "of the admin console" in long.notes[0]
    # Only the Icon template's end is cut here: that is for staff (the training run page says it).
    assert short.notes == []
    assert "Your description is cut" in alice_client.get(long.get_absolute_url()).content.decode()
    api = alice_client.__class__(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='t')[1]}")
    assert api.get(f"/api/v1/jobs/{long.pk}").json()["notes"] == long.notes


def test_a_cut_after_the_designers_words_is_not_theirs_to_mend(t5) -> None:
    sent = f"a flat blue shield icon, {LONG[24:]}"
    typed = (0, len("a flat blue shield icon"))
    assert cut_notes(sent, [Reader("T5", t5, 32)], typed=typed) == []
    assert len(cut_notes(sent, [Reader("T5", t5, 32)])) == 1


@pytest.mark.django_db
def test_a_job_on_a_model_whose_prompt_fits_has_no_note(alice, tiny_flux_dir) -> None:
    preset = AssetPreset.objects.get(slug="icon")
    job = submit.job_create(
        owner=alice, preset=preset, prompt="a star", model=ImageModel.objects.get(key="tiny-flux"), variations=1
    )
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job = GenerationJob.objects.get(pk=job.pk)
    assert job.status == "complete", job.error
    assert job.notes == []
