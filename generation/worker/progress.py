"""What a running job reports: its step progress and live previews on the job's row, a heartbeat
that keeps its lease, and the seconds each phase took. Each write goes through the worker's lease
(jobs/lease.py): once the job is not this worker's any more, it raises LeaseLost and writes nothing."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from ..jobs.lease import Lease, LeaseLost
from ..models import ImagePreview

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

WEBP_QUALITY = 70  # a glimpse of shapes and colours, a few KB each


class Stopwatch:
    """Seconds spent per phase of a job, for the job's record and the logs."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    @contextmanager
    def measure(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.totals[phase] = self.totals.get(phase, 0.0) + time.perf_counter() - start

    def summary(self, stages: dict[str, float] | None = None) -> dict[str, float]:
        """Load, render and store, plus one key per finishing stage (summed over the images).

        Storing and finishing happen inside the run (after each batch): rendering is reported
        without them, and finishing's own writes count as storing."""
        stages = stages or {}
        totals = dict(self.totals)
        finishing = totals.pop("finishing", 0.0)
        before = totals.pop("finishing_before", 0.0)  # images a previous attempt rendered
        if "run" in totals:
            totals["render"] = totals.pop("run") - totals.get("store", 0.0) - finishing
        writes = finishing + before - sum(stages.values())
        if finishing or before:
            totals["store"] = totals.get("store", 0.0) + max(0.0, writes)
        totals.update(stages)
        return {k: round(v, 4) for k, v in totals.items()}


class Progress:
    """Writes step progress to the job row, at most a few times a second, and live previews of
    the running batch, at most every STUDIO_PREVIEW_SECONDS."""

    min_interval = 0.5

    def __init__(self, lease: Lease, *, already: int = 0) -> None:
        self.lease = lease
        self.already = already  # images a previous attempt stored: the engine counts from 0 again
        self.last = 0.0
        self.step = self.total = 0
        self.last_preview = time.monotonic()  # the first preview comes one interval into the job

    def on_step(self, step: int, total: int) -> None:
        self.step, self.total = step, total
        now = time.monotonic()
        if now - self.last < self.min_interval and step < total:
            return
        self._write(now)

    def on_preview(self, first: int, draw: Callable[[], list[Image]]) -> None:
        every, now = settings.STUDIO_PREVIEW_SECONDS, time.monotonic()
        if not every or now - self.last_preview < every or self.step >= self.total:
            return  # off, too soon, or the last step: the image itself comes next
        save_previews(self.lease, self.already + first, self.step, draw())
        self.last_preview = now
        # The step goes with the preview, so the page's live channel sees that its panel changed.
        self._write(now)

    def _write(self, now: float) -> None:
        self.last = now
        # Cancelled, or reaped and handed to another worker: LeaseLost stops the engine.
        self.lease.update(progress_step=self.step, progress_steps=self.total, heartbeat_at=timezone.now())


class Heartbeat:
    """A background thread that stamps the job while it runs, even inside one long step.

    When the process dies (or freezes) the stamps stop and the reaper takes the job back; a
    database that does not answer for a while costs stamps, not the thread. The stamps stop for
    good once the lease is lost.
    """

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat-{lease.job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        try:
            while not self.stop.wait(settings.STUDIO_HEARTBEAT_SECONDS):
                try:
                    self.lease.update(heartbeat_at=timezone.now())
                except (OperationalError, InterfaceError):
                    log.warning("Heartbeat for job %s missed: the database does not answer", self.lease.job_id)
                    connection.close()  # the next stamp opens a new connection
        except LeaseLost:
            log.info("Heartbeat for job %s stopped: the job is not this worker's any more", self.lease.job_id)
        except Exception:
            log.exception("Heartbeat for job %s stopped", self.lease.job_id)
        finally:
            connection.close()


def save_previews(lease: Lease, first: int, step: int, images: list[Image]) -> None:
    """Replace the previews of images first.. with these, in one statement, under the lease."""
    rows = [
        ImagePreview(job_id=lease.job_id, index=index, step=step, webp=_webp(image))
        for index, image in enumerate(images, start=first)
    ]
    with lease.holding():
        ImagePreview.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["job", "index"], update_fields=["step", "webp"]
        )


def _webp(image: Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="WEBP", quality=WEBP_QUALITY)
    return buffer.getvalue()
