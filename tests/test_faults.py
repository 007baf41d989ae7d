"""Faults with real processes: a Redis restarted without persistence, a database that stops
answering, a worker frozen (SIGSTOP) past its lease and resumed. Each job completes exactly once
and leaves no stray file. Each test prints the time from recovery to the jobs' completion."""

import os
import signal
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse

from generation.jobs import lifecycle
from generation.models import GeneratedImage, GenerationJob, JobStatus
from tests import processes
from tests.factories import AssetPresetFactory
from tests.processes import (
    RedisServer,
    TcpProxy,
    ended,
    flush_broker,
    sending_to,
    wait_for,
    worker,
    worker_env,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def slow_preset(db):
    """About 5 s an image on 2 cores: long enough to freeze a worker between two of them."""
    return AssetPresetFactory(slug="slow", default_width=512, default_height=512, allowed_sizes=[[512, 512]], steps=80)


def submit(client, preset_slug: str, variations: int) -> GenerationJob:
    payload = {"preset": preset_slug, "prompt": "a flat blue circle", "quality": "standard"}
    response = client.post(reverse("studio"), {**payload, "variations": str(variations)}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.content
    return GenerationJob.objects.latest("created_at")


def all_ended(jobs: list[GenerationJob]) -> list[GenerationJob] | None:
    done = [ended(job) for job in jobs]
    return done if all(done) else None  # type: ignore[return-value]


def assert_completed_once(jobs: list[GenerationJob]) -> None:
    """Each job complete with one image per variation, and storage holds exactly the files its rows name."""
    for job in jobs:
        assert job.status == JobStatus.COMPLETE, job.error
        assert list(job.images.values_list("index", flat=True)) == list(range(job.images_total))
    root = Path(settings.MEDIA_ROOT)
    named = {
        str(getattr(row, field).name)
        for row in GeneratedImage.objects.all()
        for field in ("file", "rendered", "webp", "svg", "thumbnail")
        if getattr(row, field)
    }
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".partial" not in p.parts}
    assert on_disk == named, f"stray: {sorted(on_disk - named)}, missing: {sorted(named - on_disk)}"


def test_jobs_whose_messages_a_redis_restart_lost_are_sent_again_and_complete(
    alice_client, slow_preset, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path / "redis")
    fast = {"STUDIO_REAPER_SECONDS": "1", "STUDIO_RESEND_AFTER_SECONDS": "5"}
    env = worker_env(tmp_path, **fast)
    env["CELERY_BROKER_URL"] = redis.url
    try:
        with sending_to(redis.url), worker(env, tmp_path / "worker.log", beat=True) as w:
            jobs = [submit(alice_client, slow_preset.slug, variations=1) for _ in range(4)]
            # The first runs; the second waits on the queue, the others in the database (2 a user at a time).
            first_steps = GenerationJob.objects.filter(pk=jobs[0].pk, progress_step__gte=2)
            wait_for(first_steps.first, timeout=90, what="the first job's steps")
            redis.kill()  # every message it held is gone: the second job's and the unacknowledged first's
            time.sleep(2)
            redis.start()
            restarted = time.monotonic()
            done = wait_for(lambda: all_ended(jobs), timeout=150, what="every job after the restart")
            recovery = time.monotonic() - restarted
            assert "sending it again" in w.output(), w.output()[-3000:]
    finally:
        redis.stop()
    assert_completed_once(done)  # type: ignore[arg-type]
    print(f"\nRedis restarted without persistence: 4 jobs complete {recovery:.1f} s after it came back")


def test_jobs_taken_while_the_database_is_unreachable_run_once_it_answers(
    alice_client, slow_preset, tmp_path: Path
) -> None:
    flush_broker()
    proxy = TcpProxy(int(connection.settings_dict["PORT"] or 5432))
    port = connection.settings_dict["PORT"] or 5432
    # No reaper here: the messages themselves must survive (no resend of lost ones).
    env = worker_env(tmp_path, STUDIO_RESEND_AFTER_SECONDS="3600")
    env["DATABASE_URL"] = processes.test_database_url().replace(f":{port}/", f":{proxy.port}/")
    try:
        with worker(env, tmp_path / "worker.log", queues="gpu") as w:
            proxy.cut()
            jobs = [submit(alice_client, slow_preset.slug, variations=1) for _ in range(2)]
            wait_for(lambda: "database does not answer" in w.output(), timeout=60, what="the worker to try a job")
            time.sleep(3)  # an outage of some seconds, as a failover
            proxy.restore()
            restored = time.monotonic()
            done = wait_for(lambda: all_ended(jobs), timeout=120, what="both jobs after the database came back")
            recovery = time.monotonic() - restored
            assert "goes back to the queue" in w.output()
    finally:
        proxy.cut()
    assert_completed_once(done)  # type: ignore[arg-type]
    assert [job.attempts for job in done] == [1, 1]  # never claimed during the outage: no attempt spent
    print(f"\ndatabase unreachable: 2 jobs complete {recovery:.1f} s after it answered again")


def test_a_worker_frozen_past_its_lease_writes_nothing_and_the_job_completes_once(
    alice_client, slow_preset, tmp_path: Path, settings
) -> None:
    flush_broker()
    settings.STUDIO_MAX_BATCH = 1  # frozen into the job: an image at a time, so it can stop between two
    env = worker_env(tmp_path, STUDIO_STALE_AFTER_SECONDS="4", STUDIO_HEARTBEAT_SECONDS="1")
    with (
        worker(env, tmp_path / "first.log", name="gpu@first", queues="gpu") as first,
        worker(env, tmp_path / "second.log", name="gpu@second", queues="gpu") as second,
    ):
        job = submit(alice_client, slow_preset.slug, variations=4)
        # Frozen between its first stored image and its second.
        running = wait_for(
            lambda: GenerationJob.objects.filter(pk=job.pk, images_done__gte=1, progress_step__gte=2).first(),
            timeout=120,
            what="the first image",
        )
        frozen_pid, frozen_worker = running.worker_pid, running.worker  # type: ignore[union-attr]
        os.kill(frozen_pid, signal.SIGSTOP)
        try:
            settings.STUDIO_STALE_AFTER_SECONDS = 4  # the workers' limit: this process runs the reaper
            wait_for(lifecycle.jobs_reap_stale, timeout=30, what="the reaper to requeue the job", interval=1)
            taken = wait_for(
                lambda: (
                    GenerationJob.objects.filter(pk=job.pk, status=JobStatus.PROCESSING)
                    .exclude(worker=frozen_worker)
                    .first()
                ),
                timeout=60,
                what="the other worker to claim the job",
            )
        finally:
            os.kill(frozen_pid, signal.SIGCONT)
        resumed = time.monotonic()
        job = wait_for(lambda: ended(job), timeout=120, what="the job")
        recovery = time.monotonic() - resumed
        frozen_log = (first if frozen_worker == "gpu@first" else second).output()
        assert "no longer this worker's" in frozen_log, frozen_log[-3000:]
    assert job.worker == taken.worker and job.attempts == 2  # type: ignore[union-attr]
    assert_completed_once([job])
    print(f"\nworker frozen past its lease: the job completed once, {recovery:.1f} s after the frozen one resumed")
