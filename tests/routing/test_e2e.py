"""Routing with real workers: two workers hold different tiny models, each model's jobs run on its
holder, and the jobs of a worker killed mid-run finish on the other, each once."""

import time
from pathlib import Path

import pytest
from django.conf import settings

from generation.devtools.tiny import build_tiny_sdxl
from generation.jobs import lifecycle, submit
from generation.models import GenerationJob, ImageModel, JobStatus, WorkerState
from tests.factories import AssetPresetFactory
from tests.processes import ended, flush_broker, wait_for, worker, worker_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

FAST = {"STUDIO_HEARTBEAT_SECONDS": "1", "STUDIO_STALE_AFTER_SECONDS": "4"}


@pytest.fixture
def tiny_sdxl(db) -> ImageModel:
    models = Path(settings.STUDIO_MODELS_DIR)
    if not (models / "tiny-sdxl").exists():
        build_tiny_sdxl(models / "tiny-sdxl")
    fields = {"name": "Tiny SDXL", "family": "sdxl", "local_path": "tiny-sdxl", "license_name": "test"}
    return ImageModel.objects.create(key="tiny-sdxl", commercial_use=True, **fields)


def jobs_of(user, preset, model: ImageModel, count: int) -> list[GenerationJob]:
    return [
        submit.job_create(owner=user, preset=preset, prompt=f"a flat circle {n}", model=model, variations=1, seed=n)
        for n in range(count)
    ]


def holding(*pairs: tuple[str, str]) -> bool:
    held = {(row.node, key) for row in WorkerState.objects.all() for key in row.holds}
    return set(pairs) <= held


def reaped_until_ended(jobs: list[GenerationJob]) -> list[GenerationJob] | None:
    """The reaper's round (beat sends it every STUDIO_REAPER_SECONDS), then whether every job ended."""
    lifecycle.jobs_reap_stale()
    lifecycle.dispatch_waiting()
    done = [ended(job) for job in jobs]
    return done if all(done) else None  # type: ignore[return-value]


def test_jobs_run_on_the_holder_of_their_model_and_a_killed_workers_finish_elsewhere_once(
    alice, bob, tiny_sdxl, tmp_path: Path, settings, caplog
) -> None:
    flush_broker()
    settings.STUDIO_STALE_AFTER_SECONDS = 4  # this process routes and reaps: the workers' limit
    settings.STUDIO_USER_DISPATCH = 10
    settings.STUDIO_ROUTING_BACKLOG = 10  # no spare worker takes on the FLUX jobs: they wait for their holder
    flux = ImageModel.objects.get(key="tiny-flux")
    # About 3 s an image of tiny FLUX on 2 cores: long enough to kill its worker in the middle.
    slow = AssetPresetFactory(slug="slow", default_width=512, default_height=512, allowed_sizes=[[512, 512]], steps=40)
    fast = AssetPresetFactory(slug="fast")
    env = worker_env(tmp_path, **FAST)
    with (
        worker({**env, "STUDIO_DEFAULT_MODEL": "tiny-flux"}, tmp_path / "flux.log", name="gpu@flux", queues="gpu") as a,
        worker({**env, "STUDIO_DEFAULT_MODEL": "tiny-sdxl"}, tmp_path / "sdxl.log", name="gpu@sdxl", queues="gpu") as b,
    ):
        wait_for(lambda: holding(("gpu@flux", "tiny-flux"), ("gpu@sdxl", "tiny-sdxl")), timeout=60, what="preloads")
        flux_jobs = jobs_of(alice, slow, flux, 3)
        sdxl_jobs = jobs_of(bob, fast, tiny_sdxl, 2)
        running = GenerationJob.objects.filter(
            pk=flux_jobs[0].pk, status=JobStatus.PROCESSING, progress_step__gte=2, worker="gpu@flux"
        )
        wait_for(running.exists, timeout=60, what="the first FLUX job's steps on its holder")
        queues = dict(GenerationJob.objects.values_list("pk", "queue"))
        assert [queues[job.pk] for job in [*flux_jobs, *sdxl_jobs]] == ["gpu@flux.dq"] * 3 + ["gpu@sdxl.dq"] * 2
        a.kill()  # mid-render, with two more of its jobs waiting on its own queue
        killed = time.monotonic()
        done = wait_for(lambda: reaped_until_ended([*flux_jobs, *sdxl_jobs]), timeout=120, what="every job", interval=1)
        recovery = time.monotonic() - killed
        assert "Could not" not in b.output()
    assert caplog.text.count("whose worker is gone; sending it again") == 2
    for job in done:  # type: ignore[union-attr]
        assert job.status == JobStatus.COMPLETE, job.error
        assert list(job.images.values_list("index", flat=True)) == [0]  # rendered and stored once
        assert job.worker == "gpu@sdxl"  # the SDXL jobs on their holder; the FLUX ones once it was gone
    assert [job.attempts for job in done] == [2, 1, 1, 1, 1]  # type: ignore[union-attr]
    print(f"\nrouting: a worker killed mid-job; its 3 jobs complete on the other {recovery:.1f} s later")
