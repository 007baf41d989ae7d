"""A job's life once it exists: dispatch to the queue, claim by a worker, complete, fail, cancel,
refinish and reap. The only module of the job side that enqueues tasks."""

from __future__ import annotations

import logging
import os
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from brandstudio.celery import app

from ..models import GenerationJob, ImagePreview, InputImage, JobStatus
from ..routing.choice import queue_for
from ..routing.workers import gone_queues, went_stale
from .lease import Lease
from .limits import holds_lock

log = logging.getLogger(__name__)

# The tasks this module sends (generation/tasks.py); a test checks each is defined and routed.
RUN = "generation.tasks.run_generation_job"
FINISH = "generation.tasks.finish_generation_job"
DEPTH_PREVIEW = "generation.tasks.estimate_depth_preview"
TRAIN = "generation.tasks.run_training_task"


class CannotRefinish(Exception):
    pass


def job_refinish(*, job: GenerationJob) -> GenerationJob:
    """Run finishing again on a failed job's stored renders ("Retry finishing"): no new render,
    the same frozen plan (the refiner included, which loads the model), then the job completes."""
    with transaction.atomic():
        locked = GenerationJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != JobStatus.FAILED or not locked.images.exists():
            raise CannotRefinish("Only a failed job with stored images can retry its finishing.")
        locked.status, locked.error, locked.finished_at = JobStatus.QUEUED, "", None
        locked.attempts, locked.timings = 0, {}  # a new try, asked for by the designer
        locked.dispatched_at = timezone.now()  # on the queue now: `dispatch` must not send it again
        locked.save(update_fields=["status", "error", "finished_at", "attempts", "timings", "dispatched_at"])
        transaction.on_commit(lambda: _enqueue_finishing(locked.pk))
    return locked


def _enqueue_finishing(job_id: uuid.UUID) -> None:
    _send(FINISH, job_id, "finishing of job")


def job_enqueue(job_id: uuid.UUID) -> None:
    _send(RUN, job_id, "job")


def _send(task: str, job_id: uuid.UUID, what: str) -> None:
    """Put a job's task on the broker. When the broker does not answer (a restart, a failover)
    the job stays queued and the reaper's next round sends it again (resend_unclaimed): it runs
    once the broker is back, and the page says it is waiting long meanwhile."""
    try:
        send_task(task, str(job_id), **_route(task, job_id))
    except Exception:
        log.exception("Could not enqueue %s %s; the reaper sends it again", what, job_id)
        due = timezone.now() - timedelta(seconds=settings.STUDIO_RESEND_AFTER_SECONDS)
        GenerationJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(dispatched_at=due)


def _route(task: str, job_id: uuid.UUID) -> dict[str, str]:
    """The queue for the job's task (generation/routing/): the own queue of a worker that holds its
    model, or the task's route (`gpu`). Recorded on the job: routing counts the jobs waiting on
    each queue, and the reaper sends again those waiting on a gone worker's."""
    shared = settings.CELERY_TASK_ROUTES[task]["queue"]
    try:
        model_key = GenerationJob.objects.filter(pk=job_id).values_list("model_key", flat=True).first()
        queue = queue_for(model_key=model_key, shared=shared) if model_key else shared
        GenerationJob.objects.filter(pk=job_id).update(queue=queue)
    except DatabaseError:
        log.warning("Could not route job %s; it goes to the shared queue", job_id, exc_info=True)
        return {}
    return {} if queue == shared else {"queue": queue}


def send_task(task: str, *args: Any, **options: Any) -> None:
    """Every task the studio sends goes through here, by name, as CELERY_TASK_ROUTES routes it:
    tasks.py calls this module (the reaper), so this module does not import it back."""
    app.send_task(task, args=args, **options)


# A depth preview is worth nothing once the designer has moved on: its message expires.
DEPTH_PREVIEW_EXPIRES = 120
# On Redis a message's priority picks the list it waits in, and a worker reads every list of
# priority 0 (the jobs') before any list of a higher number: a preview never goes ahead of a job
# waiting on the gpu queue. https://docs.celeryq.dev/en/stable/userguide/routing.html#redis-message-priorities
DEPTH_PREVIEW_PRIORITY = 9


def depth_preview_request(*, stored: InputImage, side: int) -> bool:
    """Ask a worker for the sketch box's depth preview of `stored`: once while an ask is on the
    way (however often the box polls), and for at most STUDIO_USER_DEPTH_PREVIEWS of the user's
    inputs at a time, as their jobs are limited. True when one is on the way (asked now or
    before); False when the user's other previews go first (the box asks again as it polls)."""
    now = timezone.now()
    fresh = now - timedelta(seconds=DEPTH_PREVIEW_EXPIRES)
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=stored.owner_id).first()  # one count at a time per user
        asked = InputImage.objects.filter(owner_id=stored.owner_id, depth_asked_at__gte=fresh)
        if asked.filter(pk=stored.pk).exists():
            return True
        if asked.count() >= settings.STUDIO_USER_DEPTH_PREVIEWS:
            return False
        InputImage.objects.filter(pk=stored.pk).update(depth_asked_at=now)
    try:
        depth_preview_enqueue(stored.pk, side)
    except Exception:
        InputImage.objects.filter(pk=stored.pk, depth_asked_at=now).update(depth_asked_at=None)  # not on the way
        raise
    return True


def depth_preview_enqueue(input_id: uuid.UUID, side: int) -> None:
    """The sketch box's depth preview, estimated on a worker, behind every waiting job."""
    send_task(DEPTH_PREVIEW, str(input_id), side, expires=DEPTH_PREVIEW_EXPIRES, priority=DEPTH_PREVIEW_PRIORITY)


def dispatch(*, user_id: int) -> int:
    """Send the user's oldest waiting jobs to the GPU queue, up to STUDIO_USER_DISPATCH at once.

    Called when a job is created and when one ends. Keeping only a few of each user's jobs on
    the (first in, first out) broker queue makes users take turns on the workers: a batch of 40
    waits in the database, in order, while other people's jobs go ahead of its remainder.

    Inside a submission's transaction (which holds the same lock) it joins it: one commit for the
    job and its dispatch, not two; the broker gets the jobs after that commit either way.
    """
    with transaction.atomic(savepoint=False):
        if not holds_lock(user_id):  # a submission inside within_limits holds it already
            User.objects.select_for_update().filter(pk=user_id).first()  # one dispatcher per user at a time
        # One read of the user's unfinished jobs (at most STUDIO_MAX_JOBS_IN_FLIGHT rows): how
        # many are on the queue already, and which wait, oldest first.
        mine = GenerationJob.objects.filter(owner_id=user_id, status__in=[JobStatus.QUEUED, JobStatus.PROCESSING])
        rows = list(mine.order_by("created_at").values_list("pk", "status", "dispatched_at"))
        free = settings.STUDIO_USER_DISPATCH - sum(sent is not None for _, _, sent in rows)
        waiting = [pk for pk, status, sent in rows if status == JobStatus.QUEUED and sent is None]
        ids = waiting[: max(0, free)]
        if ids:
            GenerationJob.objects.filter(pk__in=ids).update(dispatched_at=timezone.now())
            transaction.on_commit(lambda: _enqueue_all(ids))
    return len(ids)


def _enqueue_all(ids: list[uuid.UUID]) -> None:
    for job_id in ids:
        job_enqueue(job_id)


def dispatch_waiting() -> int:
    """The reaper's safety net: send again what was sent but never claimed, then dispatch for
    every user with waiting jobs (a dispatch that was lost, say to a crash between a job ending
    and the next being sent, is made up here)."""
    resent = resend_unclaimed()
    users = GenerationJob.objects.filter(status=JobStatus.QUEUED, dispatched_at__isnull=True)
    return resent + sum(dispatch(user_id=user_id) for user_id in users.values_list("owner_id", flat=True).distinct())


def resend_unclaimed() -> int:
    """Send again each job that went to the queue more than STUDIO_RESEND_AFTER_SECONDS ago and
    is still waiting for a worker, and at once each that waits on the own queue of a worker that
    is gone (routing: killed, frozen or shutting down), to a live one.

    Its message may be lost: Redis restarted without persistence, or a worker took it while the
    database was away. A copy that is not lost is harmless: the first delivery claims the job
    (job_claim, under the row lock) and every later one finds it running or ended and does
    nothing. Without this, such a job waits forever and, counted as on the queue, holds back
    every later job of its owner (dispatch)."""
    limit = timezone.now() - timedelta(seconds=settings.STUDIO_RESEND_AFTER_SECONDS)
    waiting = GenerationJob.objects.filter(status=JobStatus.QUEUED, dispatched_at__isnull=False).order_by()
    gone = gone_queues(set(waiting.values_list("queue", flat=True).distinct()))
    stranded = waiting.filter(Q(dispatched_at__lt=limit) | Q(queue__in=gone))
    resent = 0
    for job_id, sent, queue in stranded.values_list("pk", "dispatched_at", "queue"):
        # Conditional on the time read: two reapers at once send it once.
        if GenerationJob.objects.filter(pk=job_id, status=JobStatus.QUEUED, dispatched_at=sent).update(
            dispatched_at=timezone.now()
        ):
            if queue in gone:
                log.warning("Job %s waited on %s, whose worker is gone; sending it again", job_id, queue)
            else:
                log.warning("Job %s was sent at %s and never claimed; sending it again", job_id, sent)
            job_enqueue(job_id)
            resent += 1
    return resent


def _dispatch_after(job_id: uuid.UUID) -> None:
    owner = GenerationJob.objects.filter(pk=job_id).values_list("owner_id", flat=True).first()
    if owner is not None:
        transaction.on_commit(lambda: dispatch(user_id=owner))


def job_fail(*, job_id: uuid.UUID, reason: str, then: bool = True, lease: Lease | None = None) -> None:
    """Fail the job. From a worker, only under its lease: a worker that lost the job to another
    must not fail what that one is finishing."""
    jobs = lease.held() if lease else GenerationJob.objects.filter(pk=job_id)
    failed = jobs.exclude(status__in=[JobStatus.COMPLETE, JobStatus.CANCELLED]).update(
        status=JobStatus.FAILED, error=reason[:2000], finished_at=timezone.now()
    )
    if lease and not failed:
        log.info("Job %s is no longer this worker's: not failed here (%s)", job_id, reason)
    if then:
        _dispatch_after(job_id)


def job_complete(*, job_id: uuid.UUID, timings: dict[str, float] | None = None, lease: Lease | None = None) -> bool:
    """Complete the running job (under the worker's lease when one is given); False when it was
    not running (cancelled, or handed to another worker)."""
    jobs = lease.held() if lease else GenerationJob.objects.filter(pk=job_id, status=JobStatus.PROCESSING)
    done = jobs.update(
        status=JobStatus.COMPLETE,
        finished_at=timezone.now(),
        error="",
        timings=timings or {},
        progress_step=F("progress_steps"),  # done means every step done, whatever was stored last
    )
    _dispatch_after(job_id)
    return bool(done)


def job_cancel(*, job: GenerationJob) -> None:
    """Queued jobs never start; a running one stops at its next step (the worker checks)."""
    GenerationJob.objects.filter(pk=job.pk, status__in=[JobStatus.QUEUED, JobStatus.PROCESSING]).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now()
    )
    _dispatch_after(job.pk)


def _is_stale(job: GenerationJob) -> bool:
    limit = timezone.now() - timedelta(seconds=settings.STUDIO_STALE_AFTER_SECONDS)
    return job.heartbeat_at is None or job.heartbeat_at < limit


@transaction.atomic
def job_claim(*, job_id: uuid.UUID, worker: str) -> GenerationJob | None:
    """Take the lease on a job before running it, or return None if it must not run here.

    A delivery may be a duplicate (the broker redelivered, or the reaper requeued): the row
    lock makes sure only one worker runs a job, and the attempt counter caps the retries
    of a job that keeps killing its worker.
    """
    job = GenerationJob.objects.select_for_update().filter(pk=job_id).first()
    if job is None or job.is_ended:
        return None
    if _running_elsewhere(job, worker):
        return None  # a duplicate delivery (a resend, a redelivery) of a job that runs
    if job.attempts >= settings.STUDIO_MAX_ATTEMPTS:
        job.status, job.error, job.finished_at = JobStatus.FAILED, _gave_up(job), timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
        _dispatch_after(job.pk)
        return None
    now = timezone.now()
    job.status, job.worker, job.worker_pid = JobStatus.PROCESSING, worker, os.getpid()
    job.lease = uuid.uuid4()  # whoever held it before can no longer write for it (jobs/lease.py)
    job.attempts += 1
    job.started_at = job.heartbeat_at = now
    # No steps until the engine reports them: the page says "Loading the model…", not the last attempt's "Step 0 of 28".
    job.progress_step = job.progress_steps = 0
    lease = ["status", "worker", "worker_pid", "lease", "attempts", "started_at", "heartbeat_at"]
    job.save(update_fields=[*lease, "progress_step", "progress_steps"])
    return job


def _running_elsewhere(job: GenerationJob, worker: str) -> bool:
    """Whether the job runs in another process now: its heartbeat is fresh and it is not this
    worker's own earlier attempt (a pool process that died, or this one, whose attempt ended on
    a database outage and whose message came back)."""
    if job.status != JobStatus.PROCESSING or _is_stale(job):
        return False
    if job.worker != worker:
        return True
    return job.worker_pid != os.getpid() and _process_alive(job.worker_pid)


def _process_alive(pid: int | None) -> bool:
    """A sibling pool process of this worker (same node name, so the same machine) that still runs."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _gave_up(job: GenerationJob) -> str:
    return (
        f"The worker stopped {job.attempts} times while running this job (last on {job.worker or 'unknown'}); "
        "it was not retried again. Try fewer variations or a smaller size, or ask an admin to check the workers."
    )


def jobs_reap_stale(*, worker: str | None = None) -> int:
    """Requeue (or fail, past the retry cap) jobs whose worker stopped sending heartbeats.

    With `worker`, every job that worker held is reaped at once: it has just started, so
    nothing it held can still be running.
    """
    if worker:
        candidates = GenerationJob.objects.filter(status=JobStatus.PROCESSING, worker=worker)
    else:
        limit = timezone.now() - timedelta(seconds=settings.STUDIO_STALE_AFTER_SECONDS)
        candidates = GenerationJob.objects.filter(status=JobStatus.PROCESSING, heartbeat_at__lt=limit)
    reaped = 0
    for job_id in candidates.values_list("pk", flat=True):
        reaped += _reap(job_id, stale_only=worker is None)
    return reaped


@transaction.atomic
def _reap(job_id: uuid.UUID, *, stale_only: bool) -> int:
    # skip_locked: a worker frozen inside one of its lease's short transactions holds the row;
    # the reaper comes back for it next round rather than wait on a process that may never wake.
    job = GenerationJob.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
    if job is None or job.status != JobStatus.PROCESSING or (stale_only and not _is_stale(job)):
        return 0
    if job.attempts >= settings.STUDIO_MAX_ATTEMPTS:
        job.status, job.error, job.finished_at = JobStatus.FAILED, _gave_up(job), timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
        log.warning("Job %s failed after %d attempts", job.pk, job.attempts)
        ImagePreview.objects.filter(job=job).delete()  # its worker died before it could clear them
        _dispatch_after(job.pk)
        return 1
    if stale_only:  # its worker stopped: routing sends it nothing until it stamps its row again
        went_stale(node=job.worker)
    job.status = JobStatus.QUEUED
    job.error = f"Worker {job.worker} stopped while running this job; requeued (attempt {job.attempts + 1})."
    job.dispatched_at = timezone.now()  # on the queue again: resend_unclaimed counts from now
    job.save(update_fields=["status", "error", "dispatched_at"])
    log.warning("Requeued job %s from stopped worker %s", job.pk, job.worker)
    transaction.on_commit(lambda: job_enqueue(job.pk))
    return 1
