"""Failures on purpose: a graceful shutdown mid-job, Redis restarted with jobs queued, a storage
that refuses writes, and users taking turns on one worker. Real processes, timings printed."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from generation.jobs import submit
from generation.models import GenerationJob, JobStatus
from generation.worker import run as worker_run
from tests.factories import AssetPresetFactory, GenerationJobFactory, UserFactory
from tests.processes import ended, flush_broker, free_port, wait_for, worker, worker_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def empty_queue() -> None:
    flush_broker()


@pytest.fixture
def slow_preset(db):
    return AssetPresetFactory(slug="slow", default_width=512, default_height=512, allowed_sizes=[[512, 512]], steps=60)


def test_sigterm_mid_job_lets_the_job_finish_before_the_worker_exits(alice, slow_preset, tmp_path: Path) -> None:
    """What `docker stop` does: SIGTERM to the main process; Celery's warm shutdown finishes the job."""
    with worker(worker_env(tmp_path), tmp_path / "worker.log") as w:
        job = submit.job_create(owner=alice, preset=slow_preset, prompt="a slow key", variations=2)
        wait_for(
            lambda: GenerationJob.objects.filter(pk=job.pk, progress_step__gte=2).first(), timeout=60, what="steps"
        )
        stopped_at = time.monotonic()
        os.kill(w.proc.pid, signal.SIGTERM)
        w.proc.wait(timeout=120)
        exit_after = time.monotonic() - stopped_at
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETE and job.images.count() == 2 and job.attempts == 1, job.error
    print(f"\nSIGTERM mid-job: job completed, worker exited {exit_after:.1f} s after the signal")


class RedisServer:
    """A Redis of the test's own, with the documented settings (append-only file written on
    every command, no eviction), which the test can kill -9 and start again."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir()
        port = free_port()
        self.command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
        self.command += ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
        self.command += ["--maxmemory-policy", "noeviction"]
        self.url = f"redis://127.0.0.1:{port}/0"
        self.client = redis.Redis.from_url(self.url)
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        wait_for(lambda: _pings(self.client), timeout=10, what="redis")

    def kill(self) -> None:
        self.process.kill()  # kill -9: only what the append-only file holds survives
        self.process.wait()

    def enqueue(self, jobs: list[GenerationJob]) -> None:
        """The jobs' messages, on this Redis."""
        from kombu import Connection

        from generation.tasks import run_generation_job

        with Connection(self.url) as connection:
            for job in jobs:
                run_generation_job.apply_async(args=[str(job.pk)], connection=connection)


def test_jobs_queued_in_redis_survive_a_redis_restart(alice, tmp_path: Path) -> None:
    """Redis with the documented settings (append-only file, no eviction), stopped and started
    again with jobs waiting and no worker: a worker started afterwards runs every one."""
    server = RedisServer(tmp_path / "redis")
    preset = AssetPresetFactory(slug="quick")
    try:
        jobs = [submit.job_create(owner=UserFactory(username=f"u{n}"), preset=preset, prompt="a key") for n in range(3)]
        server.enqueue(jobs)
        wait_for(lambda: server.client.llen("gpu") == 3, timeout=10, what="three queued messages")
        server.kill()
        restarted_at = time.monotonic()
        server.start()
        assert server.client.llen("gpu") == 3
        env = worker_env(tmp_path) | {"CELERY_BROKER_URL": server.url}
        with worker(env, tmp_path / "worker.log"):
            for job in jobs:
                job = wait_for(lambda job=job: ended(job), timeout=90, what="a job after the restart")
                assert job.status == JobStatus.COMPLETE, job.error
        print(f"\nredis killed with 3 jobs queued: all 3 done {time.monotonic() - restarted_at:.1f} s after restart")
    finally:
        server.kill()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_a_storage_that_refuses_writes_fails_the_job_with_a_reason_and_no_half_rows(monkeypatch) -> None:
    from generation.storage import AtomicFileSystemStorage

    def refuse(self, name, content, max_length=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(AtomicFileSystemStorage, "_save", refuse)
    job = GenerationJobFactory(images_total=2)
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "No space left on device" in job.error
    assert "could not be stored" in job.error and job.images.count() == 0


def test_a_disk_that_fills_mid_job_leaves_no_stray_file_and_retry_finishing_completes_it(monkeypatch, settings) -> None:
    import errno

    from generation.jobs import lifecycle
    from generation.storage import AtomicFileSystemStorage

    real_write, writes = AtomicFileSystemStorage._write, []

    def fills_up(self, partial, content):
        writes.append(partial)
        if len(writes) > 2:  # the first render and its thumbnail fit; then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, partial, content)

    monkeypatch.setattr(AtomicFileSystemStorage, "_write", fills_up)
    monkeypatch.setattr(lifecycle, "send_task", lambda *args, **kwargs: None)
    job = GenerationJobFactory(images_total=3)
    GenerationJob.objects.filter(pk=job.pk).update(params={**job.params, "batch_size": 1})
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "No space left on device" in job.error
    media = Path(settings.MEDIA_ROOT)
    files = sorted(p.name for p in media.rglob("*") if p.is_file())
    named = sorted(Path(str(getattr(row, f).name)).name for row in job.images.all() for f in ("file", "thumbnail"))
    assert files == named and len(files) == 2  # no 0-byte or partial file beside the stored render

    monkeypatch.setattr(AtomicFileSystemStorage, "_write", real_write)  # space freed
    lifecycle.job_refinish(job=job)  # offered: one render is stored
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETE and job.images.count() == 3


def test_users_take_turns_on_one_worker(alice, bob, tmp_path: Path) -> None:
    """Alice's batch of 6 is queued first; Bob's one job still finishes before most of hers."""
    preset = AssetPresetFactory(
        slug="turns", steps=30, default_width=256, default_height=256, allowed_sizes=[[256, 256]]
    )
    alices = [submit.job_create(owner=alice, preset=preset, prompt=f"a key {n}", variations=1) for n in range(6)]
    bobs = submit.job_create(owner=bob, preset=preset, prompt="a map", variations=1)
    with worker(worker_env(tmp_path), tmp_path / "worker.log") as w:
        for job in [*alices, bobs]:
            job = wait_for(lambda job=job: ended(job), timeout=120, what="every job")
            assert job.status == JobStatus.COMPLETE, (job.error, w.output()[-2000:])
    order = list(GenerationJob.objects.order_by("finished_at").values_list("owner__username", flat=True))
    assert order.index("bob") <= 2, order  # behind at most Alice's two already on the queue
    print(f"\nfinish order with a batch of 6 ahead: {order}")


def test_a_job_redelivered_while_it_runs_runs_once(alice, tmp_path: Path, settings) -> None:
    """The broker redelivers a message whose job outlives its visibility timeout (here 3 s) to
    another worker; the lease taken in Postgres makes that copy do nothing."""
    settings.STUDIO_ROUTING = False  # on the shared queue, where the copy reaches the other worker
    preset = AssetPresetFactory(
        slug="long", default_width=512, default_height=512, allowed_sizes=[[512, 512]], steps=200
    )
    short = {
        "STUDIO_BROKER_VISIBILITY_TIMEOUT": "3",
        "STUDIO_BROKER_RESTORE_SECONDS": "1",
        "STUDIO_HEARTBEAT_SECONDS": "1",
    }
    with worker(worker_env(tmp_path, **short), tmp_path / "first.log", name="gpu@first") as first:
        job = submit.job_create(owner=alice, preset=preset, prompt="a long key", variations=2)
        wait_for(
            lambda: GenerationJob.objects.filter(pk=job.pk, progress_step__gte=1).first(), timeout=60, what="steps"
        )
        with worker(worker_env(tmp_path, **short), tmp_path / "second.log", name="gpu@second") as second:
            wait_for(lambda: "is not to run here" in second.output(), timeout=60, what="the redelivered copy")
            job = wait_for(lambda: ended(job), timeout=120, what="the job")
    assert job.status == JobStatus.COMPLETE and job.worker == "gpu@first" and job.attempts == 1, job.error
    assert job.images.count() == 2 and "is not to run here" not in first.output()


def test_a_worker_rides_out_a_redis_restart_and_takes_the_jobs_that_waited(alice, tmp_path: Path) -> None:
    """Redis killed while a worker runs the first of three jobs: the worker reconnects, the job
    it was running completes, and the two that were queued run after the restart."""
    server = RedisServer(tmp_path / "redis")
    preset = AssetPresetFactory(
        slug="steady", default_width=512, default_height=512, allowed_sizes=[[512, 512]], steps=120
    )
    env = worker_env(tmp_path) | {"CELERY_BROKER_URL": server.url}
    try:
        with worker(env, tmp_path / "worker.log") as w:
            jobs = [submit.job_create(owner=alice, preset=preset, prompt=f"a key {n}", variations=2) for n in range(3)]
            server.enqueue(jobs)
            wait_for(
                lambda: GenerationJob.objects.filter(pk=jobs[0].pk, progress_step__gte=1).first(),
                timeout=60,
                what="job 1",
            )
            server.kill()
            time.sleep(1)
            restarted_at = time.monotonic()
            server.start()
            for job in jobs:
                job = wait_for(lambda job=job: ended(job), timeout=120, what="the jobs after the restart")
                assert job.status == JobStatus.COMPLETE, (job.error, w.output()[-2000:])
            took = time.monotonic() - restarted_at
        assert all(job.attempts == 1 for job in GenerationJob.objects.filter(pk__in=[j.pk for j in jobs]))
        print(f"\nredis killed under a running worker: 3 of 3 jobs done {took:.1f} s after the restart, each run once")
    finally:
        server.kill()
