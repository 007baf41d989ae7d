"""How far a training set's latest captioning pass got: the JSON in `TrainingSet.captioning`.

The web side starts and stops a pass (training/services.py), each time with a new token; the
worker writes its progress under the token it was sent, so a pass that was stopped or started
again never writes over its successor, and stops at its next image. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ...models import AddOn, TrainingSet

QUEUED, RUNNING, DONE, FAILED, STOPPED = "queued", "running", "done", "failed", "stopped"
LABELS = {
    QUEUED: "Waiting for a training worker",
    RUNNING: "Writing captions",
    DONE: "Done",
    FAILED: "Failed",
    STOPPED: "Stopped",
}
# A pass that has said nothing for this long lost its worker: reading a large captioner from disk
# (a 7B model) says nothing for a minute or two, one image on a GPU for seconds.
SILENT_SECONDS = 600


def new_state(*, token: str, captioner: AddOn, asked_by: str, total: int) -> dict[str, Any]:
    now = timezone.now().isoformat()
    return {
        "token": token,
        "status": QUEUED,
        "captioner": {"id": captioner.pk, "name": captioner.name},
        "asked_by": asked_by,
        "asked_at": now,
        "heartbeat": now,
        "total": total,
        "done": 0,
        "written": 0,
        "failed": 0,
        "error": "",
    }


@dataclass(frozen=True)
class Progress:
    """A pass as the set page shows it."""

    status: str
    captioner: str
    total: int
    done: int
    written: int
    failed: int
    error: str
    silent: bool  # running, but its worker has said nothing for SILENT_SECONDS

    @property
    def active(self) -> bool:
        return self.status in (QUEUED, RUNNING) and not self.silent

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def css(self) -> str:
        """The status badge's colour, as a job's of the same state."""
        looks = {RUNNING: "processing", DONE: "complete", FAILED: "failed", STOPPED: "cancelled"}
        return "failed" if self.silent else looks.get(self.status, self.status)

    @property
    def label(self) -> str:
        return "Stopped: the worker went away" if self.silent else LABELS.get(self.status, self.status)


def progress_of(training_set: TrainingSet) -> Progress | None:
    """The set's latest pass (None: none yet)."""
    state = training_set.captioning or {}
    if not isinstance(state, dict) or state.get("status") not in LABELS:
        return None
    heartbeat = parse_datetime(str(state.get("heartbeat") or ""))
    silent_since = timezone.now() - timedelta(seconds=max(SILENT_SECONDS, settings.STUDIO_STALE_AFTER_SECONDS))
    chosen = state.get("captioner")
    return Progress(
        status=str(state["status"]),
        captioner=str(chosen.get("name", "")) if isinstance(chosen, dict) else "",
        total=_count(state, "total"),
        done=_count(state, "done"),
        written=_count(state, "written"),
        failed=_count(state, "failed"),
        error=str(state.get("error") or ""),
        silent=state["status"] == RUNNING and (heartbeat is None or heartbeat < silent_since),
    )


def _count(state: dict[str, Any], key: str) -> int:
    value = state.get(key)
    return value if isinstance(value, int) and value >= 0 else 0


def advance(set_id: int, token: str, **changes: Any) -> bool:
    """Merge `changes` into the pass's state, stamped now, if the pass still holds `token`;
    False when it does not (it was stopped, or started again): its worker stops."""
    with transaction.atomic():
        row = TrainingSet.objects.select_for_update().filter(pk=set_id).values_list("captioning", flat=True).first()
        if not isinstance(row, dict) or row.get("token") != token or not token:
            return False
        state = {**row, **changes, "heartbeat": timezone.now().isoformat()}
        TrainingSet.objects.filter(pk=set_id).update(captioning=state)
    return True


def holds(set_id: int, token: str) -> bool:
    """Whether the pass still holds `token` (and so goes on)."""
    state = TrainingSet.objects.filter(pk=set_id).values_list("captioning", flat=True).first()
    return isinstance(state, dict) and bool(token) and state.get("token") == token and state.get("status") == RUNNING
