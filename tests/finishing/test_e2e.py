"""Finishing end to end: a real Celery worker renders on the demo model and finishes High and Ultra Icons."""

from pathlib import Path

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from generation.models import AssetPreset, GenerationJob, JobStatus
from tests.processes import ended, flush_broker, wait_for, worker, worker_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo" / "brand-model"


def test_a_real_worker_on_the_gpu_queue_alone_finishes_high_and_ultra_icons_and_retries_their_finishing(
    alice_client, settings, tmp_path: Path, tiny_flux_dir: Path
) -> None:
    flush_broker()
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / "tiny-flux").symlink_to(tiny_flux_dir)
    (models_dir / "demo-brand").symlink_to(DEMO_DIR)
    settings.STUDIO_MODELS_DIR = models_dir
    # The seeded Icon (palette-corrected, cut out, traced, 2x/4x upscale) at sizes two cores render in seconds,
    # with the refiner on so Ultra's img2img pass runs on the worker's loaded demo model.
    icon = AssetPreset.objects.get(slug="icon")
    icon.allowed_sizes, icon.default_width, icon.default_height = [[64, 64]], 64, 64
    icon.steps, icon.use_refiner = 6, True
    icon.save()

    def submit(quality: str) -> GenerationJob:
        data = {
            "preset": "icon",
            "model": "demo-brand",
            "prompt": "a flat blue circle icon",
            "quality": quality,
            "seed": "11",
        }
        response = alice_client.post(reverse("studio"), data | {"variations": "2"}, HTTP_HX_REQUEST="true")
        assert response.status_code == 200, response.content.decode()[:2000]
        return GenerationJob.objects.latest("created_at")

    # Only the gpu queue, as a GPU container runs: "Retry finishing" must reach it too (an Ultra
    # refinish loads the model for its refiner pass; the maintenance worker has no models).
    with worker(worker_env(tmp_path), tmp_path / "worker.log", queues="gpu") as w:
        high, ultra = submit("high"), submit("ultra")
        for job in (high, ultra):
            wait_for(lambda job=job: ended(job), timeout=240, what=f"the {job.quality} job")
            assert job.status == JobStatus.COMPLETE, (job.error, w.output()[-3000:])
        timings = {job.pk: job.timings for job in (high, ultra)}  # a refinish renders nothing: its own differ
        finished = {row.pk: row.file.name for row in ultra.images.all()}
        GenerationJob.objects.filter(pk=ultra.pk).update(status=JobStatus.FAILED, error="Finishing failed")
        ultra.images.update(finishing=[])  # as a failed finishing leaves them: rendered, not finished
        assert alice_client.post(reverse("job-refinish", args=[ultra.pk])).status_code == 302
        wait_for(lambda: ended(ultra), timeout=240, what="the Ultra job's retried finishing")
        assert ultra.status == JobStatus.COMPLETE, (ultra.error, w.output()[-3000:])
        assert "generation.tasks.finish_generation_job" in w.output()
        assert all(row.finishing and row.file.name != finished[row.pk] for row in ultra.images.all())

    for job, side, stages in [
        (high, 128, ["upscale", "palette", "transparent", "svg"]),
        (ultra, 256, ["refine", "upscale", "palette", "transparent", "svg"]),
    ]:
        assert {*stages, "render", "load"} <= set(timings[job.pk]), timings[job.pk]
        for row in job.images.all():
            assert (row.width, row.height) == (side, side), job.quality
            with default_storage.open(row.file.name) as fh:
                finished = Image.open(fh)
                finished.load()
            assert finished.size == (side, side) and finished.mode == "RGBA" and row.has_alpha
            alpha = np.asarray(finished)[..., 3]
            assert alpha.min() == 0 and alpha.max() == 255
            with default_storage.open(row.rendered.name) as fh:
                assert Image.open(fh).size[0] < side  # the render is kept at its own size
            assert row.svg and default_storage.open(row.svg.name).read().startswith(b"<svg")
            assert row.webp and row.thumbnail
            assert row.compliance_before is not None and row.compliance_after is not None
            assert row.compliance_after >= 0.96  # edges stay soft: see test_finishing_pipeline
            assert [r["stage"] for r in row.finishing] == stages
            assert all(set(r) == {"stage", "seconds", "settings"} for r in row.finishing)
            upscaled = next(r for r in row.finishing if r["stage"] == "upscale")["settings"]
            assert upscaled["passes"] >= 1 and "Demo icons 4x" in upscaled["method"]
    page = alice_client.get(reverse("image", args=[ultra.images.first().pk])).content.decode()
    assert "<td>refine</td>" in page and "format=svg" in page
