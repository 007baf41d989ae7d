"""Finishing inside the worker: a job's frozen plan run on its renders, batch by batch, and what the
asset types' finishing needs made ready when the worker starts."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.utils import timezone
from PIL.Image import Image

from ..engine import Engine, EngineError
from ..finishing.pipeline import finish, refine_batch, totals
from ..finishing.plan import Plan
from ..jobs.lease import Lease
from ..models import AssetPreset, GeneratedImage, GenerationJob
from .request import build_request
from .store import write_finished

log = logging.getLogger(__name__)


def finishing_plan(job: GenerationJob) -> Plan:
    """The plan frozen at submission; a job from before finishing existed gets one that only
    makes sure of its size (Lanczos), so it runs as it always did."""
    frozen = job.params.get("finishing")
    if frozen:
        return Plan.from_params(frozen)
    return Plan(output_size=(int(job.params["width"]), int(job.params["height"])))


class Finisher:
    """Finishes a job's stored renders, batch by batch, and writes a batch's finished images
    together once all their stages have succeeded (a failure leaves the batch's rows as
    rendered). Each write goes through the worker's lease."""

    def __init__(self, job: GenerationJob, lease: Lease) -> None:
        self.job, self.lease = job, lease
        self.plan = finishing_plan(job)
        self.engine: Engine | None = None
        self.records: list[list[dict[str, Any]]] = []

    def rows(self, rows: list[GeneratedImage], images: list[Image]) -> None:
        renders = list(images)  # as stored: what a finished image that changed nothing keeps
        refined: list[dict[str, Any] | None] = [None] * len(images)
        if self.plan.refine_strength and self.engine is not None:
            request = replace(build_request(self.job), seeds=[row.seed for row in rows], init_image=None)
            self._mark(rows[0].index)
            images, record = refine_batch(self.engine, images, request, self.plan.refine_strength)
            refined = [record] * len(images)
        finished = []
        for row, render, image, done in zip(rows, renders, images, refined, strict=True):
            self._mark(row.index)
            before = [done] if done else None
            result = finish(image, self.plan, index=row.index, device=settings.STUDIO_DEVICE, done=before)
            finished.append((row, render, result))
        try:  # the batch's files written side by side, its rows saved together
            write_finished(self.job, self.lease, finished, lossless=self.plan.correct)
        except OSError as exc:
            raise EngineError(f"The finished images could not be stored ({exc}); try again later.") from exc
        self.records += [result.records for _, _, result in finished]

    def _mark(self, index: int) -> None:
        """ "Finishing 2 of 4" on the job panel; `timings` is replaced when the job completes.
        Cancelled, or reaped and handed to another worker: LeaseLost stops the finishing."""
        self.lease.update(timings={"finishing": index + 1}, heartbeat_at=timezone.now())

    def stage_totals(self) -> dict[str, float]:
        return totals(self.records)


def prepare_finishing() -> None:
    """What the asset types' finishing needs, made ready as the worker starts, so the first job
    does not pay for it: their upscalers loaded, the colour scratch tables allocated, and their
    palettes' lookup tables built where missing (in the background, at the lowest priority: the
    first jobs use the memo meanwhile)."""
    # numpy and torch, imported by the pool process after the fork (worker/signals)
    import numpy as np

    from ..engine.devices import resolve_device
    from ..finishing import colours, upscale
    from ..finishing.planner import palette_of, upscaler_for
    from ..finishing.table import judged

    colours.colours_of(np.zeros(1, dtype=np.uint32))  # maps the scratch tables' first pages
    for preset in AssetPreset.objects.select_related("upscaler"):
        if preset.use_upscaler and (ref := upscaler_for(preset)) is not None:
            try:
                upscale.load(upscale.upscaler_path(ref), resolve_device(settings.STUDIO_DEVICE))
            except Exception as exc:  # the job that needs it says so; the other presets go on
                log.warning("Upscaler %s not preloaded: %s", ref.key, exc)
        if (palette := palette_of(preset)) is not None:
            judged(palette).ready()
