"""Celery tasks: thin wrappers that take ids and call one function.

The web side sends them by name (jobs/lifecycle.py); each has a route in CELERY_TASK_ROUTES.
What runs a job lives in generation/worker/, imported inside the task so that torch loads in
the worker's pool process only.
"""

from celery import shared_task
from django.conf import settings

from .control.depth import depth_estimator, store_preview
from .jobs.lifecycle import dispatch_waiting, jobs_reap_stale
from .review.notify import notify_decision, notify_submitted
from .storage import sweep_partial
from .training import keepalive
from .training.services import captions_fail_to_start, run_fail_to_start, runs_reap_stale


@shared_task(acks_late=True, reject_on_worker_lost=True, bind=True)
def run_generation_job(self, job_id: str) -> None:  # type: ignore[no-untyped-def]
    from .worker.run import run_job  # torch loads in the worker only

    run_job(job_id, worker=self.request.hostname or "unknown")


@shared_task(acks_late=True, reject_on_worker_lost=True, bind=True)
def finish_generation_job(self, job_id: str) -> None:  # type: ignore[no-untyped-def]
    """ "Retry finishing": the job's renders are stored, so run_job only finishes them. Routed with
    the jobs: a refinish may load the model (Ultra's refiner) or an upscaler."""
    from .worker.run import run_job  # torch loads in the worker only

    run_job(job_id, worker=self.request.hostname or "unknown")


@shared_task
def estimate_depth_preview(input_id: str, side: int) -> None:
    """The studio form's preview of a sketch's depth map: only a worker runs the depth model."""
    from .worker.engines import make_room_for_estimator  # torch loads in the worker only

    if (estimator := depth_estimator()) is not None:
        make_room_for_estimator(estimator.resolved_local_path)
    store_preview(input_id, side)


@shared_task
def notify_review_submitted(submission_ids: list[str]) -> None:
    """New submissions' email to the reviewers and webhook (review/services.py sends it after commit)."""
    notify_submitted(submission_ids)


@shared_task
def notify_review_decision(submission_id: str) -> None:
    """A review decision's email and webhook (review/services.py sends it after commit)."""
    notify_decision(submission_id)


@shared_task
def reap_stale_jobs() -> int:
    sweep_partial()  # what writes of a killed process left half done
    reaped = jobs_reap_stale() + runs_reap_stale()
    keepalive.release_finished()  # after the runs are reaped: a dead worker's marker goes with its run
    return reaped + dispatch_waiting()


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    bind=True,
    time_limit=settings.STUDIO_TRAINING_TIME_LIMIT,
    soft_time_limit=settings.STUDIO_TRAINING_TIME_LIMIT - 60,
)
def run_training_task(self, run_id: str) -> None:  # type: ignore[no-untyped-def]
    from .worker.engines import engines_lock  # torch loads in the worker only

    try:
        # The preload thread may be importing diffusers right now; its lazy imports are not thread-safe.
        with engines_lock:
            from .training.lora import run_training  # torch loads in the worker only
    except Exception as exc:
        run_fail_to_start(run_id, exc)
        raise
    with keepalive.held(keepalive.run_marker(run_id)):  # a scale-to-zero worker stays up for hours
        run_training(run_id, worker=self.request.hostname or "unknown")


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    bind=True,
    time_limit=settings.STUDIO_TRAINING_TIME_LIMIT,
    soft_time_limit=settings.STUDIO_TRAINING_TIME_LIMIT - 60,
)
def write_training_captions(self, set_id: int, token: str) -> None:  # type: ignore[no-untyped-def]
    """A captioner writes a training set's missing captions, on the training queue."""
    from .worker.engines import engines_lock  # torch loads in the worker only

    try:
        # As for a run: the preload thread may be importing diffusers, whose lazy imports are not thread-safe.
        with engines_lock:
            from .training.captions.captioner import write_captions  # torch and transformers: the worker only
    except Exception as exc:
        captions_fail_to_start(set_id, token, exc)
        raise
    with keepalive.held(keepalive.captions_marker(set_id, token)):
        write_captions(set_id, token, worker=self.request.hostname or "unknown")
