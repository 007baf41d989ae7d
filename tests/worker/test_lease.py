"""A worker's lease on its job: a worker that lost the job (it froze, the reaper handed the job to
another) writes nothing for it, and what it wrote before it knew is removed. In-process; the
real processes (SIGSTOP past the stale limit) are in tests/test_faults.py."""

import logging
import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from celery.exceptions import Reject
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone
from PIL import Image

from generation.finishing.pipeline import Finished
from generation.jobs import lifecycle
from generation.jobs.lease import Lease, LeaseLost
from generation.models import GeneratedImage, GenerationJob, ImagePreview, JobStatus
from generation.worker import progress as worker_progress
from generation.worker import run as worker_run
from generation.worker import store as worker_store
from generation.worker.progress import save_previews
from tests.factories import GenerationJobFactory

pytestmark = pytest.mark.django_db


def stored_files() -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def taken_over(job: GenerationJob) -> Lease:
    """What the reaper and a second worker do to a job whose worker froze past the stale limit:
    requeue it, then claim it (a new lease). Returns the second worker's lease."""
    stale = timezone.now() - timedelta(seconds=settings.STUDIO_STALE_AFTER_SECONDS + 1)
    GenerationJob.objects.filter(pk=job.pk).update(heartbeat_at=stale)
    assert lifecycle.jobs_reap_stale() == 1
    second = lifecycle.job_claim(job_id=job.pk, worker="gpu@second")
    assert second is not None
    return Lease.of(second)


@pytest.fixture
def claimed(monkeypatch):
    monkeypatch.setattr(lifecycle, "send_task", lambda *args, **kwargs: None)
    job = GenerationJobFactory(images_total=2)
    first = lifecycle.job_claim(job_id=job.pk, worker="gpu@first")
    assert first is not None
    return first


def test_a_worker_that_lost_its_lease_stores_no_image_and_leaves_no_file(claimed) -> None:
    first = Lease.of(claimed)
    taken_over(claimed)
    with pytest.raises(LeaseLost):
        worker_store.store_images(claimed, first, 0, [Image.new("RGB", (64, 64)), Image.new("RGB", (64, 64))])
    assert not GeneratedImage.objects.filter(job=claimed).exists()
    assert stored_files() == []


def test_the_worker_holding_the_lease_stores_its_images(claimed) -> None:
    second = taken_over(claimed)
    rows = worker_store.store_images(claimed, second, 0, [Image.new("RGB", (64, 64))])
    assert [row.index for row in rows] == [0] and GenerationJob.objects.get(pk=claimed.pk).images_done == 1
    assert len(stored_files()) == 2  # the render and its thumbnail


def test_a_worker_that_lost_its_lease_neither_fails_nor_completes_the_job(claimed) -> None:
    first = Lease.of(claimed)
    second = taken_over(claimed)
    lifecycle.job_fail(job_id=claimed.pk, reason="IntegrityError: duplicate key", lease=first)
    assert not lifecycle.job_complete(job_id=claimed.pk, lease=first)
    job = GenerationJob.objects.get(pk=claimed.pk)
    assert job.status == JobStatus.PROCESSING and job.lease == second.token and "duplicate" not in job.error
    assert lifecycle.job_complete(job_id=claimed.pk, lease=second)


def test_a_worker_that_lost_its_lease_writes_no_progress_preview_or_note(claimed) -> None:
    first = Lease.of(claimed)
    second = taken_over(claimed)
    save_previews(second, 0, 3, [Image.new("RGB", (32, 32), "red")])
    with pytest.raises(LeaseLost):
        worker_progress.Progress(first).on_step(5, 10)
    with pytest.raises(LeaseLost):
        save_previews(first, 0, 7, [Image.new("RGB", (32, 32), "blue")])
    first.clear_previews()  # its own were replaced: the second worker's stay
    assert list(ImagePreview.objects.filter(job=claimed).values_list("step", flat=True)) == [3]
    assert GenerationJob.objects.get(pk=claimed.pk).progress_step == 0
    second.clear_previews()
    assert not ImagePreview.objects.filter(job=claimed).exists()


def test_finishing_under_a_lost_lease_keeps_the_render_and_removes_its_new_files(claimed) -> None:
    first = Lease.of(claimed)
    [row] = worker_store.store_images(claimed, first, 0, [Image.new("RGB", (64, 64))])
    before = stored_files()
    taken_over(claimed)
    finished = Finished(image=Image.new("RGB", (64, 64), "green"), records=[{"stage": "resize"}])
    with pytest.raises(LeaseLost):
        worker_store.write_finished(claimed, first, [(row, Image.new("RGB", (64, 64)), finished)], lossless=True)
    row = GeneratedImage.objects.get(pk=row.pk)
    assert row.finishing == [] and row.file.name == row.rendered.name
    assert stored_files() == before


def test_a_run_whose_job_is_taken_over_mid_render_stops_quietly_and_writes_nothing(
    claimed, monkeypatch, caplog
) -> None:
    GenerationJob.objects.filter(pk=claimed.pk).update(status=JobStatus.QUEUED, attempts=0)
    real_on_step = worker_progress.Progress.on_step
    second: list[Lease] = []

    def frozen_then_resumed(self, step: int, total: int) -> None:
        if not second:  # this worker froze here; the reaper and another worker took the job
            job = GenerationJob.objects.get(pk=claimed.pk)
            second.append(taken_over(job))
        real_on_step(self, step, total)

    monkeypatch.setattr(worker_progress.Progress, "on_step", frozen_then_resumed)
    with caplog.at_level(logging.INFO):
        worker_run.run_job(str(claimed.pk), worker="gpu@first")
    job = GenerationJob.objects.get(pk=claimed.pk)
    assert job.status == JobStatus.PROCESSING and job.worker == "gpu@second" and job.lease == second[0].token
    assert not job.images.exists() and stored_files() == [] and not job.error.startswith("Generation failed")
    assert "no longer this worker's" in caplog.text


def test_a_failed_write_removes_the_files_of_its_batch(claimed, monkeypatch) -> None:
    def disk_full(row, image):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(worker_store, "attach_thumbnail", disk_full)
    with pytest.raises(OSError):
        worker_store.store_images(claimed, Lease.of(claimed), 0, [Image.new("RGB", (64, 64))])
    assert stored_files() == [] and not GeneratedImage.objects.filter(job=claimed).exists()


def test_one_image_of_a_batch_failing_to_write_removes_the_files_of_every_image(claimed, monkeypatch) -> None:
    real = worker_store.attach_thumbnail

    def second_disk_full(row, image):
        if row.index == 1:
            raise OSError(28, "No space left on device")
        real(row, image)

    monkeypatch.setattr(worker_store, "attach_thumbnail", second_disk_full)
    images = [Image.new("RGB", (64, 64), (i * 40, 0, 0)) for i in range(2)]  # written side by side
    with pytest.raises(OSError):
        worker_store.store_images(claimed, Lease.of(claimed), 0, images)
    assert stored_files() == [] and not GeneratedImage.objects.filter(job=claimed).exists()


def test_a_batch_is_stored_in_index_order_with_each_seed(claimed) -> None:
    images = [Image.new("RGB", (64, 64), (i * 40, 0, 0)) for i in range(2)]
    rows = worker_store.store_images(claimed, Lease.of(claimed), 0, images)
    assert [row.index for row in rows] == [0, 1]
    assert [row.seed for row in rows] == claimed.params["seeds"][:2]
    assert all(row.file.name.startswith(f"generations/{claimed.owner_id}/") for row in rows)


class TestClaiming:
    def test_a_duplicate_delivery_of_a_job_running_in_a_sibling_process_does_nothing(self, claimed) -> None:
        GenerationJob.objects.filter(pk=claimed.pk).update(worker_pid=os.getppid())  # alive, not this process
        assert lifecycle.job_claim(job_id=claimed.pk, worker="gpu@first") is None

    def test_a_job_of_a_dead_pool_process_of_this_worker_is_claimed_again(self, claimed) -> None:
        GenerationJob.objects.filter(pk=claimed.pk).update(worker_pid=2**22 + 7)  # no such process
        again = lifecycle.job_claim(job_id=claimed.pk, worker="gpu@first")
        assert again is not None and again.attempts == 2 and again.lease != claimed.lease

    def test_this_process_claims_again_the_job_its_outage_gave_back(self, claimed) -> None:
        again = lifecycle.job_claim(job_id=claimed.pk, worker="gpu@first")  # worker_pid is this process
        assert again is not None and again.lease != claimed.lease


class TestQueueMessagesLost:
    @pytest.fixture
    def sent(self, monkeypatch) -> list[tuple]:
        calls: list[tuple] = []
        monkeypatch.setattr(lifecycle, "send_task", lambda *args, **kwargs: calls.append(args))
        return calls

    def test_a_job_sent_long_ago_and_never_claimed_is_sent_again_once(self, sent, settings) -> None:
        long_ago = timezone.now() - timedelta(seconds=settings.STUDIO_RESEND_AFTER_SECONDS + 5)
        stranded = GenerationJobFactory(dispatched_at=long_ago)
        GenerationJobFactory(dispatched_at=timezone.now())  # on the queue, within the bound
        assert lifecycle.dispatch_waiting() == 1
        assert sent == [(lifecycle.RUN, str(stranded.pk))]
        assert lifecycle.dispatch_waiting() == 0  # sent again now: the bound counts from here
        assert GenerationJob.objects.get(pk=stranded.pk).dispatched_at > long_ago

    def test_the_owners_later_jobs_go_after_the_stranded_ones_complete(
        self, sent, settings, alice, django_capture_on_commit_callbacks
    ) -> None:
        long_ago = timezone.now() - timedelta(seconds=settings.STUDIO_RESEND_AFTER_SECONDS + 5)
        stranded = [GenerationJobFactory(owner=alice, dispatched_at=long_ago) for _ in range(2)]
        waiting = GenerationJobFactory(owner=alice)
        lifecycle.dispatch_waiting()
        assert sorted(args[1] for args in sent) == sorted(str(job.pk) for job in stranded)
        for job in stranded:  # each resent copy runs the job once
            claimed = lifecycle.job_claim(job_id=job.pk, worker="gpu@a")
            assert claimed is not None
            assert lifecycle.job_claim(job_id=job.pk, worker="gpu@b") is None  # the other copy
            with django_capture_on_commit_callbacks(execute=True):
                lifecycle.job_complete(job_id=job.pk, lease=Lease.of(claimed))
        assert (lifecycle.RUN, str(waiting.pk)) in sent

    def test_a_requeued_job_is_not_sent_again_at_once(self, sent, claimed) -> None:
        taken = timezone.now() - timedelta(seconds=settings.STUDIO_STALE_AFTER_SECONDS + 1)
        GenerationJob.objects.filter(pk=claimed.pk).update(heartbeat_at=taken, dispatched_at=taken)
        lifecycle.jobs_reap_stale()
        sent.clear()
        assert lifecycle.resend_unclaimed() == 0 and sent == []


def test_a_worker_that_cannot_reach_the_database_gives_the_message_back(monkeypatch) -> None:
    def unreachable(**kwargs):
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')

    monkeypatch.setattr(lifecycle, "job_claim", unreachable)
    monkeypatch.setattr(worker_run, "OUTAGE_PAUSE_SECONDS", 0)
    with pytest.raises(Reject) as rejected:
        worker_run.run_job(str(uuid.uuid4()), worker="gpu@test")
    assert rejected.value.requeue


def test_a_finished_image_that_changed_no_pixel_keeps_the_render_as_its_png_and_thumbnail(claimed) -> None:
    lease = Lease.of(claimed)
    render = Image.new("RGB", (64, 64), "white")
    [row] = worker_store.store_images(claimed, lease, 0, [render])
    png, thumbnail = row.file.name, row.thumbnail.name
    same = Finished(image=render.copy(), records=[{"stage": "size"}])
    worker_store.write_finished(claimed, lease, [(row, render, same)], lossless=True)
    row = GeneratedImage.objects.get(pk=row.pk)
    assert (row.file.name, row.thumbnail.name) == (png, thumbnail) and row.webp.name.endswith("-finished.webp")
    assert row.finishing == [{"stage": "size"}]
    changed = Finished(image=Image.new("RGB", (64, 64), "green"), records=[{"stage": "palette"}])
    worker_store.write_finished(claimed, lease, [(row, render, changed)], lossless=True)
    row = GeneratedImage.objects.get(pk=row.pk)
    assert row.file.name.endswith("-finished.png") and row.rendered.name == png and row.thumbnail.name != thumbnail
    assert sorted(stored_files()) == sorted([row.file.name, row.rendered.name, row.webp.name, row.thumbnail.name])
