"""Runs one claimed job inside a worker process: load the model once, generate, store, finish.

Imported only by the Celery tasks, so torch is loaded in workers alone.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from ..engine import EngineError
from ..engine.types import Cancelled, without_paths
from ..finishing.pipeline import FinishingError
from ..jobs import lifecycle
from ..logs import current_job
from ..models import GenerationJob
from .engines import load_engine, make_room_for_addons
from .finish import Finisher
from .progress import Heartbeat, Progress, Stopwatch, clear_previews
from .request import build_request
from .store import open_rendered, store_images

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)


def note_prompt_cuts(job: GenerationJob, engine: Any) -> None:
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
        GenerationJob.objects.filter(pk=job.pk).update(notes=notes)


def run_job(job_id: str, *, worker: str) -> None:
    """Render what the job has not rendered yet and finish every image not finished yet: a
    retried attempt resumes, and "Retry finishing" (lifecycle.job_refinish) runs this with
    every image rendered, so it only finishes."""
    token = current_job.set(job_id)  # every log line of this job carries its id
    try:
        _run_job(job_id, worker=worker)
    finally:
        current_job.reset(token)


def _run_job(job_id: str, *, worker: str) -> None:
    job = lifecycle.job_claim(job_id=uuid.UUID(job_id), worker=worker)
    if job is None:
        log.info("Job %s is not to run here (ended, running elsewhere, or out of attempts)", job_id)
        return
    log.info("Job %s started on %s (attempt %d)", job.pk, worker, job.attempts)
    clock = Stopwatch()
    finisher = Finisher(job)
    with Heartbeat(job.pk, worker=worker):
        try:
            already = job.images.count()  # a retried attempt resumes after the images it stored
            pending = list(job.images.filter(finishing=[]).order_by("index"))  # rendered, not finished
            engine = None
            if already < job.images_total or (pending and finisher.plan.refine_strength):
                engine = load_engine(job.model_key, clock=clock, waiting=f"Job {job.pk}")
            finisher.engine = engine
            batch = max(1, job.params.get("batch_size") or settings.STUDIO_MAX_BATCH)
            for start in range(0, len(pending), batch):  # the refiner's batches, as when rendered
                rows = pending[start : start + batch]
                with clock.measure("finishing_before"):
                    finisher.rows(rows, [open_rendered(row) for row in rows])

            def on_images(first: int, images: list[Image]) -> None:
                with clock.measure("store"):
                    try:
                        rows = store_images(job, already + first, images)
                    except OSError as exc:  # a full disk, an unreachable blob store
                        raise EngineError(f"The images could not be stored ({exc}); try again later.") from exc
                with clock.measure("finishing"):
                    finisher.rows(rows, images)

            if engine is not None and already < job.images_total:
                note_prompt_cuts(job, engine)
                progress = Progress(job, already=already)
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
        except FinishingError as exc:
            # The renders are stored: "Retry finishing" picks up from them.
            log.warning("Job %s: %s", job.pk, exc)
            lifecycle.job_fail(job_id=job.pk, reason=str(exc))
            return
        except Cancelled:
            log.info("Job %s cancelled", job.pk)
            return
        except EngineError as exc:
            lifecycle.job_fail(job_id=job.pk, reason=str(exc))
            return
        except SoftTimeLimitExceeded:
            lifecycle.job_fail(
                job_id=job.pk,
                reason=f"The job took longer than {settings.CELERY_TASK_SOFT_TIME_LIMIT} s and was stopped.",
            )
            return
        except Exception as exc:
            log.exception("Job %s failed", job.pk)
            lifecycle.job_fail(
                job_id=job.pk, reason=f"Generation failed: {exc.__class__.__name__}: {without_paths(str(exc))}"
            )
            return
        finally:
            clear_previews(job.pk)  # the stored images (or the job's end) replace them
    timings = clock.summary(finisher.stage_totals())
    lifecycle.job_complete(job_id=job.pk, timings=timings)
    log.info("Job %s complete: %s", job.pk, ", ".join(f"{k} {v:.3f} s" for k, v in timings.items()))
