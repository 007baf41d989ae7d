"""Celery tasks: thin wrappers that take ids and call one function."""

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True, bind=True)
def run_generation_job(self, job_id: str) -> None:  # type: ignore[no-untyped-def]
    from .runner import run_job  # torch loads in the worker only

    run_job(job_id, worker=self.request.hostname or "unknown")


@shared_task
def reap_stale_jobs() -> int:
    from .services import jobs_reap_stale

    return jobs_reap_stale()
