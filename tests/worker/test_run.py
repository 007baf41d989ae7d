"""The worker-side job runner, in-process against the real database and storage."""

import shutil
from collections import OrderedDict

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from generation.engine import EngineError
from generation.model_files import local_weights
from generation.models import GenerationJob, ImageModel, JobStatus
from generation.worker import engines as worker_engines
from generation.worker import progress as worker_progress
from generation.worker import run as worker_run
from generation.worker import store as worker_store
from tests.factories import GenerationJobFactory, leased

pytestmark = pytest.mark.django_db


def run(job: GenerationJob) -> GenerationJob:
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job.refresh_from_db()
    return job


def test_a_job_stores_one_png_per_seed_with_its_size_and_seed() -> None:
    job = run(GenerationJobFactory(images_total=3))
    assert job.status == JobStatus.COMPLETE and job.images_done == 3 and not job.error
    images = list(job.images.all())
    assert [img.seed for img in images] == [1000, 1001, 1002]
    for img in images:
        with default_storage.open(img.file.name) as fh:
            assert Image.open(fh).size == (64, 64) == (img.width, img.height)


def test_a_missing_model_fails_at_once_naming_the_install_command(settings, tmp_path) -> None:
    settings.STUDIO_MODELS_DIR = tmp_path
    worker_engines._engines.clear()
    job = run(GenerationJobFactory())
    assert job.status == JobStatus.FAILED
    assert "is not installed" in job.error and "manage.py build_default_model" in job.error


def test_an_unknown_model_key_fails_with_a_reason() -> None:
    job = GenerationJobFactory()
    job.model_key = "flux-9000"
    job.save()
    assert "not configured" in run(job).error


def test_a_job_cancelled_while_running_stops_and_stays_cancelled(monkeypatch) -> None:
    job = GenerationJobFactory()
    real_on_step = worker_progress.Progress.on_step

    def cancel_then_step(self, step: int, total: int) -> None:
        GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED)
        real_on_step(self, step, total)

    monkeypatch.setattr(worker_progress.Progress, "on_step", cancel_then_step)
    assert run(job).status == JobStatus.CANCELLED
    assert job.images.count() == 0


def test_a_retried_attempt_resumes_after_the_images_already_stored() -> None:
    job = GenerationJobFactory(images_total=3)
    worker_store.store_images(job, leased(job), 0, [Image.new("RGB", (64, 64))])
    job = run(job)
    assert job.status == JobStatus.COMPLETE
    assert [img.seed for img in job.images.all()] == [1000, 1001, 1002]


def test_an_unexpected_error_fails_the_job_with_its_message(monkeypatch) -> None:
    def broken(job, lease, first, images):
        raise RuntimeError("PNG encoder exploded")

    monkeypatch.setattr(worker_run, "store_images", broken)
    job = run(GenerationJobFactory())
    assert job.status == JobStatus.FAILED and "RuntimeError: PNG encoder exploded" in job.error
    assert job.images.count() == 0


def hf_cache(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_a_model_is_found_in_the_hugging_face_cache_without_network(tiny_flux_dir, tmp_path, monkeypatch) -> None:
    revision = "0" * 40
    repo_dir = hf_cache(tmp_path, monkeypatch) / "models--brand--tiny-flux"
    shutil.copytree(tiny_flux_dir, repo_dir / "snapshots" / revision)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(revision)
    model = ImageModel(key="cached", name="Cached", family="flux", repo_id="brand/tiny-flux")
    assert local_weights(model) == repo_dir / "snapshots" / revision


def test_a_model_missing_from_the_cache_names_the_pull_command(tmp_path, monkeypatch) -> None:
    hf_cache(tmp_path, monkeypatch)
    model = ImageModel.objects.get(key="flux-schnell")
    with pytest.raises(EngineError, match="run `python manage.py pull_model flux-schnell`"):
        local_weights(model)


def test_a_job_for_a_model_that_is_not_installed_fails_at_once(tmp_path, monkeypatch) -> None:
    hf_cache(tmp_path, monkeypatch)
    job = GenerationJobFactory()
    job.model_key = "flux-dev"
    job.save()
    job = run(job)
    assert job.status == JobStatus.FAILED and "pull_model flux-dev" in job.error


@pytest.fixture(autouse=True)
def no_depth_estimator(monkeypatch) -> None:
    """The budget tests count models only (a depth test may have left an estimator read)."""
    monkeypatch.setattr(worker_engines, "_estimator_bytes", lambda: 0)


class FakeEngine:
    def __init__(self, size: int) -> None:
        self.memory_bytes, self.unloaded = size, False

    def unload(self) -> None:
        self.unloaded = True


def test_the_least_recently_used_model_is_unloaded_to_fit_the_budget(settings, monkeypatch) -> None:
    settings.STUDIO_MEMORY_BUDGET_GB = 3
    gb = 2**30
    default, old, recent = FakeEngine(gb), FakeEngine(gb), FakeEngine(gb)
    monkeypatch.setattr(
        worker_engines, "_engines", OrderedDict([("tiny-flux", default), ("old", old), ("recent", recent)])
    )
    worker_engines._make_room(gb)
    assert list(worker_engines._engines) == ["tiny-flux", "recent"] and old.unloaded and not default.unloaded


def test_an_add_on_read_by_a_job_makes_room_but_never_unloads_the_jobs_own_model(
    settings, monkeypatch, tmp_path
) -> None:
    settings.STUDIO_MEMORY_BUDGET_GB = 3
    gb = 2**30
    default, other, current = FakeEngine(gb), FakeEngine(gb), FakeEngine(gb)
    addon = tmp_path / "controlnet"
    addon.mkdir()
    current.unread_addons = lambda request: [addon]  # type: ignore[attr-defined]
    sizes = {addon: gb}
    monkeypatch.setattr(worker_engines, "folder_size", lambda folder: sizes[folder])
    monkeypatch.setattr(
        worker_engines, "_engines", OrderedDict([("tiny-flux", default), ("other", other), ("sdxl", current)])
    )
    worker_engines.make_room_for_addons(current, None, "sdxl")  # type: ignore[arg-type]
    assert list(worker_engines._engines) == ["tiny-flux", "sdxl"] and other.unloaded
    sizes[addon] = 5 * gb
    worker_engines.make_room_for_addons(current, None, "sdxl")  # type: ignore[arg-type]
    assert (
        list(worker_engines._engines) == ["sdxl"] and not current.unloaded
    )  # over on its own: it runs, said in the log


def test_the_default_model_is_preloaded_and_kept(monkeypatch) -> None:
    monkeypatch.setattr(worker_engines, "_engines", OrderedDict())
    worker_engines.preload_default_model()
    assert list(worker_engines._engines) == ["tiny-flux"]
    assert worker_engines.load_engine("tiny-flux") is worker_engines._engines["tiny-flux"]


def test_a_missing_default_model_does_not_break_the_worker(settings, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(worker_engines, "_engines", OrderedDict())
    settings.STUDIO_MODELS_DIR = tmp_path
    worker_engines.preload_default_model()  # logs a warning; jobs will fail with the reason
    assert not worker_engines._engines


def test_json_logs_carry_the_job_id_of_every_line_a_job_writes(capsys) -> None:
    import json
    import logging

    from generation.logs import JobFilter, JsonFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(JobFilter())
    logger = logging.getLogger("generation.worker")
    logger.addHandler(handler)
    try:
        job = run(GenerationJobFactory())
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert lines and all(line["job_id"] == str(job.pk) for line in lines)
    assert any("complete" in line["message"] for line in lines)
