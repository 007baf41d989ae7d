"""The outline-style LoRA experiment's path, with tiny settings: a zip of Fluent regular glyphs
through the training pages, a run with the studio's defaults (fewer steps), published, used by
the next jobs, and measured with and without it (scripts/outline_lora_report.py at full size)."""

import pytest

from generation.devtools.demo_kit import GLYPH_SUBJECTS, read_kit_card
from generation.devtools.outline_experiment import Experiment, install_tiny, lora_change
from generation.models import BrandLora, GenerationJob, ImageModel, TrainingSet
from tests.icons import needs_icons


@needs_icons
@pytest.mark.django_db
def test_an_outline_set_uploaded_as_a_zip_trains_a_lora_the_next_jobs_use_and_it_is_measured(
    settings, tmp_path
) -> None:
    settings.STUDIO_LORA_ROOT = tmp_path / "loras"
    settings.STUDIO_DEFAULT_MODEL = "demo-brand"
    settings.STUDIO_MODELS_DIR = tmp_path / "models"
    from django.core.management import call_command

    call_command("build_default_model", verbosity=0)
    report = Experiment(
        train_subjects=5,
        colours_per_subject=4,
        measure_subjects=6,
        seeds=1,
        overrides={"steps": 2},
        sheet=tmp_path / "s.png",
    ).run()
    assert report["set_images"] == 20 and report["unseen_subjects"] == 1  # the Icon minimum: 5 subjects x 4 colours
    assert (tmp_path / "s.png").is_file()
    assert report["run_params"]["steps"] == 2 and report["run_params"]["resolution"] == 64
    lora = BrandLora.objects.get()
    jobs = list(GenerationJob.objects.order_by("created_at"))  # with the LoRA first, then without
    assert len(jobs) == 12
    assert all(job.params["loras"][0]["path"] == lora.file for job in jobs[:6])
    assert all(not job.params["loras"] for job in jobs[6:])
    for key in ("closer_to_regular_with_lora", "closer_to_regular_without_lora", "colour_right_with_lora"):
        assert 0.0 <= report[key] <= 1.0
    assert 0.0 < report["with_lora"]["ink"] < 1.0


@needs_icons
@pytest.mark.django_db
def test_the_experiment_runs_on_a_tiny_pipeline_of_another_family(settings, tmp_path) -> None:
    """scripts/outline_lora_report.py --family: the set, the run, the LoRA and the jobs are the
    family's, through the same pages, and the LoRA changes what the family's engine draws."""
    settings.STUDIO_LORA_ROOT = tmp_path / "loras"
    settings.STUDIO_MODELS_DIR = tmp_path / "models"
    model = install_tiny("zimage", list(GLYPH_SUBJECTS)[:6])
    ImageModel.objects.filter(pk=model.pk).update(default_steps=4)  # the jobs draw in 4 steps: a minute less
    assert read_kit_card(tmp_path / "models" / model.key)["subjects"].keys() == set(model.subjects)
    report = Experiment(
        train_subjects=5,
        colours_per_subject=4,
        measure_subjects=6,
        seeds=1,
        overrides={"steps": 2, "learning_rate": 5e-2},
        model_key=model.key,
    ).run()
    assert TrainingSet.objects.get().family == "zimage"
    assert report["set_images"] == 20 and report["run_params"]["resolution"] == 64
    lora = BrandLora.objects.get()
    assert lora.family == "zimage" and lora.file == "zimage/icon-v1.safetensors"
    jobs = list(GenerationJob.objects.order_by("created_at"))
    assert len(jobs) == 12 and {job.model_key for job in jobs} == {model.key}
    assert all(job.params["loras"][0]["path"] == lora.file for job in jobs[:6])
    assert lora_change(model.key, count=2) > 0.1
