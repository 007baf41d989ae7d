"""Where a job's task goes: the own queue of a worker that holds the job's model, or the shared one."""

from __future__ import annotations

from collections import Counter

from django.conf import settings
from django.db.models import Count

from ..models import GenerationJob, JobStatus, WorkerState
from .workers import live_workers


def queue_for(*, model_key: str, shared: str) -> str:
    """The queue for a job of `model_key`: a live worker's own, or `shared` (the task's route,
    `gpu`) where none is live. Each worker reads its own queue before the shared one
    (routing/cycle.py).

    0. While jobs wait on the shared queue (sent while no worker was live), the shared queue:
       sent to a worker's own queue now, this job would go ahead of them, and users take turns
       (lifecycle.dispatch).
    1. A worker that holds the model and has nothing waiting on its queue (one running nothing
       first): at most one job ahead, and no load.
    2. Else, where no worker holds the model or STUDIO_ROUTING_BACKLOG of its jobs wait per
       holder (on the queues or still in the database), a spare worker: idle (nothing running,
       nothing waiting) and no waiting job asks for its models, so unloading them costs nobody a
       load. Several workers end up holding a model many jobs ask for.
    3. Else the holder with the fewest jobs ahead: a busy studio does not reload models.
    4. Else (no worker holds it) an idle worker, or the one with the fewest jobs ahead: it loads
       the model.
    Of equals, the one with the most memory free.
    """
    workers = list(live_workers()) if settings.STUDIO_ROUTING else []
    if not workers:
        return shared
    waiting, running, asked = _load(workers, shared)
    if waiting[shared]:
        return shared

    def ahead(worker: WorkerState) -> tuple[int, int, int]:
        return waiting[worker.queue], running[worker.node], -worker.free_bytes

    holders = sorted((w for w in workers if model_key in w.holds), key=ahead)
    if holders and not waiting[holders[0].queue]:
        return holders[0].queue
    idle = [w for w in workers if ahead(w)[:2] == (0, 0)]
    spare = [w for w in idle if not any(asked[key] for key in w.holds)]
    if spare and asked[model_key] >= settings.STUDIO_ROUTING_BACKLOG * len(holders):
        return min(spare, key=ahead).queue
    return min(holders or idle or workers, key=ahead).queue


def _load(workers: list[WorkerState], shared: str) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """Jobs sent and not yet claimed, by queue (each worker's own, and the shared one), jobs each
    worker runs (by node), and jobs waiting for each model, sent or still in the database."""
    jobs = GenerationJob.objects.order_by()  # no ordering: it would join the GROUP BY
    queued = jobs.filter(status=JobStatus.QUEUED)
    sent = queued.filter(dispatched_at__isnull=False, queue__in=[shared, *(w.queue for w in workers)]).values("queue")
    held = jobs.filter(status=JobStatus.PROCESSING, worker__in=[w.node for w in workers]).values("worker")
    waiting = Counter(dict(sent.annotate(n=Count("pk")).values_list("queue", "n")))
    running = Counter(dict(held.annotate(n=Count("pk")).values_list("worker", "n")))
    asked = Counter(dict(queued.values("model_key").annotate(n=Count("pk")).values_list("model_key", "n")))
    return waiting, running, asked
