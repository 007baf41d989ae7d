"""Live previews on the studio's side: the worker stores them, pages and the API show them.

The engine draws them (generation/engine/previews.py); here they are small WebPs in the
database (ImagePreview), one row per image of the running batch, overwritten as the job goes.
No torch here: the web process imports this.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .models import GenerationJob, ImagePreview, JobStatus

if TYPE_CHECKING:
    from PIL.Image import Image

WEBP_QUALITY = 70  # a glimpse of shapes and colours, a few KB each


def save(job_id: uuid.UUID, first: int, step: int, images: list[Image]) -> None:
    """Replace the previews of images first.. with these, in one statement."""
    rows = [
        ImagePreview(job_id=job_id, index=index, step=step, webp=_webp(image))
        for index, image in enumerate(images, start=first)
    ]
    ImagePreview.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["job", "index"], update_fields=["step", "webp"]
    )


def clear(job_id: uuid.UUID) -> None:
    ImagePreview.objects.filter(job_id=job_id).delete()


def attach(jobs: Iterable[GenerationJob]) -> None:
    """Give each running job its `live_previews`, in one query for all of them."""
    running = {job.pk: job for job in jobs if job.status == JobStatus.PROCESSING}
    for job in running.values():
        job.live_previews = []  # type: ignore[attr-defined]
    if not running:
        return
    for preview in ImagePreview.objects.filter(job_id__in=running).order_by("index"):
        job = running[preview.job_id]
        if preview.index >= job.images_done:
            job.live_previews.append(preview)  # type: ignore[attr-defined]


def _webp(image: Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="WEBP", quality=WEBP_QUALITY)
    return buffer.getvalue()
