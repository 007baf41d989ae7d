"""What a GPU worker advertises (generation.models.WorkerState), and which workers count as live.

A worker writes its row from its pool process, where the models are loaded: at start, after each
load or unload (worker/engines), and a stamp every STUDIO_HEARTBEAT_SECONDS (worker/signals). A row
not stamped within STUDIO_STALE_AFTER_SECONDS, or marked leaving, is a worker routing skips.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from ..models import WorkerState
from .cycle import OWN


def direct_queue(node: str) -> str:
    """A worker's own queue, named as Celery's docs name one (the `celeryd_after_setup` signal):
    the worker adds it to the queues it takes from, and no other worker does."""
    return f"{node}{OWN}"


def advertise(*, node: str, holds: list[str], free_bytes: int, card: str, pid: int, start: bool = False) -> None:
    """Write the worker's row: the models it holds, least recently used first, and what they leave
    free. `start`: a new pool process, which also takes back a row a previous life left leaving."""
    fields = {"queue": direct_queue(node), "holds": holds, "free_bytes": free_bytes, "card": card, "pid": pid}
    fields["seen_at"] = timezone.now()
    if start:
        WorkerState.objects.update_or_create(node=node, defaults={**fields, "leaving": False})
    elif not WorkerState.objects.filter(node=node).update(**fields):
        WorkerState.objects.get_or_create(node=node, defaults=fields)


def touch(*, node: str) -> bool:
    """The worker's periodic stamp; False when it has no row (the database was reset or away
    when it started): it writes its whole advertisement then."""
    return bool(WorkerState.objects.filter(node=node).update(seen_at=timezone.now()))


def forget(*, node: str) -> None:
    """The worker is shutting down: it finishes the job it runs, and routing sends it no other."""
    WorkerState.objects.filter(node=node).update(leaving=True)


def went_stale(*, node: str) -> None:
    """A job of the worker's stopped sending heartbeats: the worker counts as gone now, not when its
    own stamp is as old (a few seconds later), so the job is not sent back to its queue. A worker
    that was only slow is live again at its next stamp."""
    WorkerState.objects.filter(node=node).update(seen_at=_live_since() - timedelta(seconds=1))


def live_workers() -> QuerySet[WorkerState]:
    return WorkerState.objects.filter(seen_at__gte=_live_since(), leaving=False)


def _live_since() -> datetime:
    return timezone.now() - timedelta(seconds=settings.STUDIO_STALE_AFTER_SECONDS)


def gone_queues(queues: set[str]) -> set[str]:
    """Which of these queues are a worker's own that no live worker takes from any more. A message
    that waits there waits for ever (or until a worker of that name starts again): its job is
    sent again."""
    queues = {queue for queue in queues if queue.endswith(OWN)}
    return queues - set(live_workers().filter(queue__in=queues).values_list("queue", flat=True))
