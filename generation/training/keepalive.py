"""Keeping a scale-to-zero worker up while it trains.

Where workers scale on the length of the broker's lists (KEDA on Azure, deploy/azure/), a LoRA
run empties the `training` list the moment a worker takes it, and the scaler would stop that
worker after its cooldown, hours before the run ends. So while a run or a captioner pass works,
its worker keeps a marker in one more list, STUDIO_KEEPALIVE_LIST, which the scaler watches too.

The marker goes when the work ends, however it ends. A worker killed outright cannot take it
away: the reaper (tasks.reap_stale_jobs) drops every marker whose work is no longer running, so a
dead worker's marker keeps no GPU paid for past the run's own stale limit. Off (an empty name) on
the embedded broker and wherever workers do not scale to zero.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings

from brandstudio.celery import app

from ..models import JobStatus, TrainingRun, TrainingSet
from .captions import progress

log = logging.getLogger(__name__)


def run_marker(run_id: str) -> str:
    return f"run:{run_id}:{int(time.time())}"


def captions_marker(set_id: int, token: str) -> str:
    return f"captions:{set_id}:{token}:{int(time.time())}"


@contextmanager
def held(marker: str) -> Iterator[None]:
    """The worker stays up while the block runs. A broker that does not answer costs the hold,
    never the work: at worst the worker may be scaled in as it was before."""
    name = settings.STUDIO_KEEPALIVE_LIST
    pushed = bool(name) and _call("rpush", name, marker)
    try:
        yield
    finally:
        if pushed:
            _call("lrem", name, 0, marker)


def release_finished() -> int:
    """Drop the markers of work that no longer runs (its worker was killed, or the marker was
    left by a broker that failed at the end); how many were dropped."""
    name = settings.STUDIO_KEEPALIVE_LIST
    if not name:
        return 0
    try:
        with _redis() as client:
            markers = [m.decode() if isinstance(m, bytes) else str(m) for m in client.lrange(name, 0, -1)]
            finished = [m for m in markers if not still_working(m)]
            for marker in finished:
                client.lrem(name, 0, marker)
    except Exception as exc:  # the reaper's other work goes on; the next sweep tries again
        log.warning("Keep-alive list %s could not be swept: %s", name, exc)
        return 0
    return len(finished)


def still_working(marker: str) -> bool:
    """Whether the work a marker names still runs. A marker younger than the stale limit counts
    as working whatever the database says: its run may not be marked as processing yet."""
    kind, *rest = marker.split(":")
    try:
        pushed_at = int(rest[-1])
    except (IndexError, ValueError):
        return False  # not a marker of this studio's
    if time.time() - pushed_at < settings.STUDIO_STALE_AFTER_SECONDS:
        return True
    if kind == "run" and len(rest) == 2:
        try:
            return TrainingRun.objects.filter(pk=uuid.UUID(rest[0]), status=JobStatus.PROCESSING).exists()
        except ValueError:
            return False
    if kind == "captions" and len(rest) == 3 and rest[0].isdigit():
        training_set = TrainingSet.objects.filter(pk=int(rest[0])).first()
        if training_set is None or (training_set.captioning or {}).get("token") != rest[1]:
            return False  # gone, or stopped and started again: that pass has a marker of its own
        current = progress.progress_of(training_set)
        return current is not None and current.active
    return False


@contextmanager
def _redis() -> Iterator[Any]:
    """The redis-py client of kombu's Redis channel: signed in as the broker is (a key, or Entra
    through the broker URL's credential provider), so the list needs no settings of its own."""
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        channel: Any = conn.default_channel  # kombu types it as the base channel, which has no client
        yield channel.client


def _call(command: str, *args: Any) -> bool:
    try:
        with _redis() as client:
            getattr(client, command)(*args)
    except Exception as exc:
        log.warning("Keep-alive list %s: %s failed: %s", settings.STUDIO_KEEPALIVE_LIST, command, exc)
        return False
    return True
