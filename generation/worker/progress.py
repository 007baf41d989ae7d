"""What a running job reports: its step progress and live previews on the job's row, a heartbeat
that keeps its lease, and the seconds each phase took."""

from __future__ import annotations

import io
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from ..engine.types import Cancelled
from ..models import GenerationJob, ImagePreview, JobStatus

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

    def __init__(self, job: GenerationJob, *, already: int = 0) -> None:
        self.job_id = job.pk
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
        save_previews(self.job_id, self.already + first, self.step, draw())
        self.last_preview = now
        # The step goes with the preview, so the page's live channel sees that its panel changed.
        self._write(now)

    def _write(self, now: float) -> None:
        self.last = now
        updated = GenerationJob.objects.filter(pk=self.job_id, status=JobStatus.PROCESSING).update(
            progress_step=self.step, progress_steps=self.total, heartbeat_at=timezone.now()
        )
        if not updated:  # cancelled, or reaped and handed to another worker
            raise Cancelled("The job is no longer running here.")


class Heartbeat:
    """A background thread that stamps the job while it runs, even inside one long step.

    When the process dies the stamps stop and the reaper takes the job back.
    """

    def __init__(self, job_id: uuid.UUID, *, worker: str) -> None:
        self.job_id, self.worker = job_id, worker
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        try:
            while not self.stop.wait(settings.STUDIO_HEARTBEAT_SECONDS):
                GenerationJob.objects.filter(pk=self.job_id, status=JobStatus.PROCESSING, worker=self.worker).update(
                    heartbeat_at=timezone.now()
                )
        except Exception:
            log.exception("Heartbeat for job %s stopped", self.job_id)
        finally:
            connection.close()


def save_previews(job_id: uuid.UUID, first: int, step: int, images: list[Image]) -> None:
    """Replace the previews of images first.. with these, in one statement."""
    rows = [
        ImagePreview(job_id=job_id, index=index, step=step, webp=_webp(image))
        for index, image in enumerate(images, start=first)
    ]
    ImagePreview.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["job", "index"], update_fields=["step", "webp"]
    )


def clear_previews(job_id: uuid.UUID) -> None:
    ImagePreview.objects.filter(job_id=job_id).delete()


def _webp(image: Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="WEBP", quality=WEBP_QUALITY)
    return buffer.getvalue()
