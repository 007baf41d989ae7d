"""Runs one claimed job inside a worker process: load the model once, generate, store, finish.

Imported only by the Celery tasks, so torch is loaded in workers alone.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from celery.exceptions import Reject, SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections

from ..engine import EngineError
from ..engine.types import Cancelled, without_paths
from ..finishing.pipeline import FinishingError
from ..jobs import lifecycle
from ..jobs.lease import Lease, LeaseLost
from ..logs import current_job
from ..models import GenerationJob
from .engines import load_engine, make_room_for_addons
from .finish import Finisher
from .progress import Heartbeat, Progress, Stopwatch
from .request import build_request
from .store import open_rendered, store_images

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)


# A database that does not answer (an outage, a failover, a restart).
OUTAGE = (OperationalError, InterfaceError)
# How long a worker waits, when the database does not answer, before giving the message back.
OUTAGE_PAUSE_SECONDS = 5


def note_prompt_cuts(job: GenerationJob, lease: Lease, engine: Any) -> None:
    """Tell the designer when the model's encoders never read some of their own description
    (a template's end cut off is for staff: the training run page reports it)."""
    sent = job.params.get("prompt", "")
    description = " ".join(job.prompt.split())
    start = sent.find(description) if description else -1
    typed = (start, start + len(description)) if start >= 0 else None
    try:
        notes = engine.prompt_notes(sent, typed=typed)
    except Exception:  # counting tokens must never cost a render
        log.warning("Job %s: could not count the prompt's tokens", job.pk, exc_info=True)
        return
    if notes != job.notes:
        lease.update(notes=notes)


def run_job(job_id: str, *, worker: str) -> None:
    """Render what the job has not rendered yet and finish every image not finished yet: a
    retried attempt resumes, and "Retry finishing" (lifecycle.job_refinish) runs this with
    every image rendered, so it only finishes."""
    token = current_job.set(job_id)  # every log line of this job carries its id
    try:
        _run_job(job_id, worker=worker)
    except OUTAGE as exc:
        _give_back(job_id, exc)
    finally:
        current_job.reset(token)


def _give_back(job_id: str, exc: Exception) -> None:
    """The database did not answer: the job's message goes back to the queue, unacknowledged
    (acks_late), rather than be acknowledged for a job that never ran or never finished. Its
    next delivery claims it again (a claimed attempt resumes after the images it stored)."""
    log.warning("Job %s: the database does not answer (%s); the job goes back to the queue", job_id, exc)
    for conn in connections.all():
        conn.close_if_unusable_or_obsolete()
    time.sleep(OUTAGE_PAUSE_SECONDS)  # not a tight loop of deliveries while it is away
    raise Reject(str(exc), requeue=True) from exc


def _run_job(job_id: str, *, worker: str) -> None:
    job = lifecycle.job_claim(job_id=uuid.UUID(job_id), worker=worker)
    if job is None:
        log.info("Job %s is not to run here (ended, running elsewhere, or out of attempts)", job_id)
        return
    log.info("Job %s started on %s (attempt %d)", job.pk, worker, job.attempts)
    lease = Lease.of(job)
    clock = Stopwatch()
    finisher = Finisher(job, lease)
    with Heartbeat(lease):
        try:
            already = job.images.count()  # a retried attempt resumes after the images it stored
            pending = list(job.images.filter(finishing=[]).order_by("index"))  # rendered, not finished
            engine = None
            if already < job.images_total or (pending and finisher.plan.refine_strength):
                engine = load_engine(job.model_key, clock=clock, waiting=f"Job {job.pk}")
                if plan := getattr(engine, "plan", None):
                    lease.update(memory_plan=plan)  # the plan this job ran with
                lease.update(speed=engine.speed_record(job.quality))
            finisher.engine = engine
            batch = max(1, job.params.get("batch_size") or settings.STUDIO_MAX_BATCH)
            for start in range(0, len(pending), batch):  # the refiner's batches, as when rendered
                rows = pending[start : start + batch]
                with clock.measure("finishing_before"):
                    finisher.rows(rows, [open_rendered(row) for row in rows])

            def on_images(first: int, images: list[Image]) -> None:
                with clock.measure("store"):
                    try:
                        rows = store_images(job, lease, already + first, images)
                    except OSError as exc:  # a full disk, an unreachable blob store
                        raise EngineError(f"The images could not be stored ({exc}); try again later.") from exc
                with clock.measure("finishing"):
                    finisher.rows(rows, images)

            if engine is not None and already < job.images_total:
                note_prompt_cuts(job, lease, engine)
                progress = Progress(lease, already=already)
                request = build_request(job, skip=already)
                make_room_for_addons(engine, request, job.model_key)
                with clock.measure("run"):
                    engine.generate(
                        request,
                        max_batch=job.params.get("batch_size", settings.STUDIO_MAX_BATCH),
                        on_step=progress.on_step,
                        on_images=on_images,
                        on_preview=progress.on_preview,
                    )
        except LeaseLost:
            # Cancelled, or (after this process froze past the stale limit) reaped and claimed by
            # another worker, which finishes it: stop, and write nothing more for it.
            log.info("Job %s is no longer this worker's (cancelled or taken over); stopped", job.pk)
            return
        except FinishingError as exc:
            # The renders are stored: "Retry finishing" picks up from them.
            log.warning("Job %s: %s", job.pk, exc)
            lifecycle.job_fail(job_id=job.pk, reason=str(exc), lease=lease)
            return
        except Cancelled:
            log.info("Job %s cancelled", job.pk)
            return
        except EngineError as exc:
            lifecycle.job_fail(job_id=job.pk, reason=str(exc), lease=lease)
            return
        except SoftTimeLimitExceeded:
            lifecycle.job_fail(
                job_id=job.pk,
                reason=f"The job took longer than {settings.CELERY_TASK_SOFT_TIME_LIMIT} s and was stopped.",
                lease=lease,
            )
            return
        except OUTAGE:
            raise  # not the job's fault: run_job gives its message back
        except Exception as exc:
            log.exception("Job %s failed", job.pk)
            reason = f"Generation failed: {exc.__class__.__name__}: {without_paths(str(exc))}"
            lifecycle.job_fail(job_id=job.pk, reason=reason, lease=lease)
            return
        finally:
            _clear_previews(lease)  # the stored images (or the job's end) replace them
    timings = clock.summary(finisher.stage_totals())
    if lifecycle.job_complete(job_id=job.pk, timings=timings, lease=lease):
        log.info("Job %s complete: %s", job.pk, ", ".join(f"{k} {v:.3f} s" for k, v in timings.items()))
    else:
        log.info("Job %s was not completed here: it is no longer this worker's", job.pk)


def _clear_previews(lease: Lease) -> None:
    try:
        lease.clear_previews()
    except OUTAGE:  # the error that ends the attempt matters more; the next attempt clears them
        log.warning("Job %s: previews not cleared, the database does not answer", lease.job_id)
