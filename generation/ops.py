"""What staff see of the machinery: broker queue depth and live workers (read-only probes).

Both ask the broker, so both are bounded by short timeouts and report "unknown" rather than
hang or fail the page when the broker is down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.core.cache import cache

from brandstudio.celery import app

log = logging.getLogger(__name__)

QUEUES = ("gpu", "training", "maintenance")


@dataclass
class WorkerInfo:
    name: str
    active: list[str] = field(default_factory=list)  # job ids it is running


def queue_depths() -> dict[str, int | None]:
    """Messages waiting in each broker queue (None: the broker could not be asked)."""
    depths: dict[str, int | None] = {}
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            for name in QUEUES:
                depths[name] = _depth(conn, name)
    except Exception as exc:
        log.warning("Queue depth unavailable: %s", exc)
        return dict.fromkeys(QUEUES)
    return depths


def _depth(conn: object, name: str) -> int | None:
    try:
        with conn.channel() as channel:  # type: ignore[attr-defined]
            return int(channel.queue_declare(queue=name, passive=True).message_count)
    except Exception:  # a queue nobody declared yet holds nothing
        return 0


WORKER_NAMES_SECONDS = 5  # how long /health/?workers=1 answers from the last ask


def worker_names() -> list[str] | None:
    """The names of the workers that answer (None: no broker), asked at most once every few
    seconds per web process: each ask holds the request's thread for up to a second."""
    cached = cache.get("health-worker-names", default=False)
    if cached is not False:
        return cached
    answered = workers(timeout=1.0)
    names = None if answered is None else [w.name for w in answered]
    cache.set("health-worker-names", names, WORKER_NAMES_SECONDS)
    return names


def workers(timeout: float = 1.0) -> list[WorkerInfo] | None:
    """The workers that answer within `timeout`, with the jobs they are running (None: no broker)."""
    try:
        active = app.control.inspect(timeout=timeout).active() or {}
    except Exception as exc:
        log.warning("Worker status unavailable: %s", exc)
        return None
    return [
        WorkerInfo(name, [str((task.get("args") or ["?"])[0]) for task in tasks])
        for name, tasks in sorted(active.items())
    ]
