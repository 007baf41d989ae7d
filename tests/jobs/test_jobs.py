from datetime import timedelta

import pytest
from django.utils import timezone

from generation.jobs import lifecycle, recipe
from generation.models import QUALITY, AssetPreset, GenerationJob, ImageModel, ImagePreview, JobStatus
from tests.factories import GenerationJobFactory

pytestmark = pytest.mark.django_db


def processing(job: GenerationJob, *, worker: str = "gpu@a", age: int = 0, attempts: int = 1) -> GenerationJob:
    job.status, job.worker, job.attempts = JobStatus.PROCESSING, worker, attempts
    job.heartbeat_at = timezone.now() - timedelta(seconds=age)
    job.save()
    return job


def tiny() -> ImageModel:
    return ImageModel.objects.get(key="tiny-flux")


def test_quality_scales_the_presets_steps(preset) -> None:
    steps = {
        q: recipe.resolve_params(
            preset=preset, prompt="x", quality=q, variations=1, width=64, height=64, seed=1, model=tiny()
        )["steps"]
        for q in ("draft", "standard", "high", "ultra")
    }
    assert steps == {"draft": 2, "standard": 4, "high": 6, "ultra": 7}


def test_quality_tiers_follow_the_brief_at_28_steps() -> None:
    assert [round(28 * QUALITY[q].steps) for q in ("draft", "standard", "high", "ultra")] == [15, 28, 40, 50]


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [
        ((1024, 1024), 512, (512, 512)),
        ((2048, 1024), 512, (512, 256)),
        ((512, 512), 512, (512, 512)),
        ((1024, 1024), None, (1024, 1024)),
    ],
)
def test_drafts_render_at_most_512_pixels_a_side(size, max_side, expected) -> None:
    assert recipe.fit_size(*size, max_side) == expected


def test_high_and_ultra_freeze_their_upscale_and_refiner_into_the_finishing_plan() -> None:
    product = AssetPreset.objects.get(slug="product-illustration")  # refiner and upscaler on

    def params(quality):
        return recipe.resolve_params(
            preset=product, model=tiny(), prompt="x", quality=quality, variations=1, width=1024, height=1024, seed=1
        )

    def plan(quality):
        return params(quality)["finishing"]

    assert (params("draft")["width"], plan("draft")["upscale"], plan("draft")["refine_strength"]) == (512, 1, None)
    assert (plan("high")["upscale"], plan("high")["refine_strength"]) == (2, None)  # only Ultra refines
    assert (plan("ultra")["upscale"], params("ultra")["steps"]) == (4, 62)
    assert tuple(plan("ultra")["output_size"]) == (4096, 4096)


def test_without_a_seed_each_variation_still_gets_its_own_stored_seed(preset) -> None:
    params = recipe.resolve_params(
        preset=preset, prompt="x", quality="standard", variations=4, width=64, height=64, seed=None, model=tiny()
    )
    assert len(set(params["seeds"])) == 4


def test_a_distilled_model_brings_its_own_steps_and_guidance(preset) -> None:
    schnell = ImageModel.objects.get(key="flux-schnell")
    params = recipe.resolve_params(
        preset=preset, model=schnell, prompt="x", quality="standard", variations=1, width=64, height=64, seed=1
    )
    assert (params["steps"], params["guidance_scale"]) == (4, 0.0)
    assert params["model"] == {
        "name": "FLUX.1 [schnell]",
        "family": "flux",
        "source": "black-forest-labs/FLUX.1-schnell",
        "license": "Apache-2.0",
        "license_url": "https://huggingface.co/black-forest-labs/FLUX.1-schnell",
        "commercial_use": True,
        "license_notice": "Apache-2.0: outputs may be used in products.",
    }


class TestClaim:
    def test_a_queued_job_is_claimed_and_counts_an_attempt(self) -> None:
        job = lifecycle.job_claim(job_id=GenerationJobFactory().pk, worker="gpu@a")
        assert job is not None and job.status == JobStatus.PROCESSING and job.attempts == 1
        assert job.worker == "gpu@a" and job.worker_pid

    def test_a_duplicate_delivery_of_a_job_running_elsewhere_does_nothing(self) -> None:
        job = processing(GenerationJobFactory(), worker="gpu@a")
        assert lifecycle.job_claim(job_id=job.pk, worker="gpu@b") is None
        job.refresh_from_db()
        assert job.worker == "gpu@a" and job.attempts == 1

    def test_an_ended_job_is_never_run_again(self) -> None:
        job = GenerationJobFactory(status=JobStatus.COMPLETE)
        assert lifecycle.job_claim(job_id=job.pk, worker="gpu@a") is None

    def test_a_redelivery_after_the_pool_process_died_runs_it_again(self) -> None:
        job = processing(GenerationJobFactory(), worker="gpu@a")
        claimed = lifecycle.job_claim(job_id=job.pk, worker="gpu@a")
        assert claimed is not None and claimed.attempts == 2

    def test_past_the_retry_cap_the_job_fails_with_a_reason(self, settings) -> None:
        job = processing(GenerationJobFactory(), worker="gpu@a", attempts=settings.STUDIO_MAX_ATTEMPTS)
        assert lifecycle.job_claim(job_id=job.pk, worker="gpu@a") is None
        job.refresh_from_db()
        assert job.status == JobStatus.FAILED and "stopped 3 times" in job.error


class TestReaper:
    def test_a_job_with_a_stale_heartbeat_is_requeued(self, django_capture_on_commit_callbacks, settings) -> None:
        job = processing(GenerationJobFactory(), age=settings.STUDIO_STALE_AFTER_SECONDS + 5)
        fresh = processing(GenerationJobFactory(), age=1)
        with django_capture_on_commit_callbacks() as callbacks:
            assert lifecycle.jobs_reap_stale() == 1
        job.refresh_from_db()
        fresh.refresh_from_db()
        assert job.status == JobStatus.QUEUED and "requeued" in job.error
        assert fresh.status == JobStatus.PROCESSING
        assert len(callbacks) == 1  # the job is sent to the queue again after commit

    def test_a_stale_job_out_of_attempts_is_failed(self, settings) -> None:
        job = processing(GenerationJobFactory(), age=999, attempts=settings.STUDIO_MAX_ATTEMPTS)
        lifecycle.jobs_reap_stale()
        job.refresh_from_db()
        assert job.status == JobStatus.FAILED and job.finished_at

    def test_a_job_failed_by_the_reaper_leaves_no_live_previews_behind(self, settings) -> None:
        job = processing(GenerationJobFactory(), age=999, attempts=settings.STUDIO_MAX_ATTEMPTS)
        ImagePreview.objects.create(job=job, index=0, step=3, webp=b"RIFF")
        lifecycle.jobs_reap_stale()
        assert not ImagePreview.objects.filter(job=job).exists()

    def test_a_restarted_worker_takes_back_its_own_jobs_at_once(self) -> None:
        mine = processing(GenerationJobFactory(), worker="gpu@a", age=1)
        other = processing(GenerationJobFactory(), worker="gpu@b", age=1)
        assert lifecycle.jobs_reap_stale(worker="gpu@a") == 1
        mine.refresh_from_db()
        other.refresh_from_db()
        assert mine.status == JobStatus.QUEUED and other.status == JobStatus.PROCESSING


def test_a_job_the_queue_could_not_take_stays_queued_and_is_sent_at_the_reapers_next_round(monkeypatch) -> None:
    from brandstudio.celery import app

    def down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(app, "send_task", down)
    job = GenerationJobFactory(dispatched_at=timezone.now())
    lifecycle.job_enqueue(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and not job.error
    sent: list[tuple] = []
    monkeypatch.setattr(app, "send_task", lambda name, args, **options: sent.append((name, *args)))
    assert lifecycle.dispatch_waiting() == 1 and sent == [(lifecycle.RUN, str(job.pk))]


def test_a_job_records_the_negative_prompt_only_where_its_model_acts_on_it(preset) -> None:
    model = tiny()

    def recorded(masked: bool = False) -> str:
        params = recipe.resolve_params(
            preset=preset,
            prompt="x",
            quality="draft",
            variations=1,
            width=64,
            height=64,
            seed=1,
            model=model,
            masked=masked,
        )
        return str(params["negative_prompt"])

    assert preset.negative_prompt and recorded() == ""  # guidance-distilled FLUX.1 ignores it
    model.options = {"true_cfg_scale": 1.5}  # two passes a step: the negative prompt acts
    assert recorded() == preset.negative_prompt
    assert recorded(masked=True) == ""  # a FLUX.1 repaint runs without true CFG
    model.family, model.options = "sdxl", {}
    preset.guidance_scale = 1.0  # no classifier-free guidance, no negative prompt
    assert recorded() == ""
    preset.guidance_scale = 5.0
    assert recorded() == preset.negative_prompt
