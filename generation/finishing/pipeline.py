"""Runs a plan's stages on one render, in the brief's order, and records what each did.

refine → size (upscaler passes, then Lanczos to the exact size) → icon canvas (the kit's safe
area) → compliance before → palette correction → sharpen → transparent background → compliance after → SVG trace.

Worker-only: the stage modules import numpy, vtracer and (upscale, refine) torch, so they are
imported here, lazily, and this module is imported by the worker alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from celery.exceptions import SoftTimeLimitExceeded

from ..engine.types import EngineError, without_paths
from .plan import Plan

if TYPE_CHECKING:
    from PIL.Image import Image

    from ..engine.types import Engine, GenerationRequest


class FinishingError(Exception):
    """A stage failed: the job says which and why (no server paths), and keeps its renders."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"Finishing failed at the {stage} stage: {reason}")
        self.stage, self.reason = stage, reason


@dataclass
class Finished:
    image: Image  # RGB, or RGBA when the background was cut out
    svg: str | None = None
    compliance_before: float | None = None
    compliance_after: float | None = None
    records: list[dict[str, Any]] = field(default_factory=list)  # [{"stage", "seconds", "settings"}]


@contextmanager
def stage(name: str, records: list[dict[str, Any]], settings: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Times one stage and records it; any failure inside becomes a FinishingError naming it.
    The yielded record's settings may be added to (what the stage reports back)."""
    record: dict[str, Any] = {"stage": name, "seconds": 0.0, "settings": dict(settings)}
    start = time.perf_counter()
    try:
        yield record
    except (FinishingError, SoftTimeLimitExceeded):
        raise  # a time limit is the job's, not the stage's: the worker says so
    except Exception as exc:
        reason = without_paths(str(exc)) or exc.__class__.__name__
        raise FinishingError(name, reason) from exc
    record["seconds"] = round(time.perf_counter() - start, 4)
    records.append(record)


def refine_batch(
    engine: Engine, images: list[Image], request: GenerationRequest, strength: float
) -> tuple[list[Image], dict[str, Any]]:
    """The refiner pass over one batch (one img2img call at render size): the images and its record."""
    from . import refine  # torch: loaded with the first refiner pass

    records: list[dict[str, Any]] = []
    with stage("refine", records, {"strength": strength}) as record:
        try:
            refined, info = refine.refine(engine, images, request, strength)
        except EngineError as exc:  # the engine cannot refine after all: the images go on as rendered
            refined, info = images, {"skipped": without_paths(str(exc))}
        record["settings"].update(info or {})
    # The batch's time, shared out: each image's record says what its refining cost.
    record = {**records[0], "seconds": round(records[0]["seconds"] / max(1, len(images)), 4)}
    return list(refined), record


def finish(
    image: Image,
    plan: Plan,
    *,
    engine: Engine | None = None,
    request: GenerationRequest | None = None,
    index: int = 0,
    device: str,
    done: list[dict[str, Any]] | None = None,
) -> Finished:
    """One image through the plan. `done`: records of stages the worker already ran on it (the
    batch's refine pass); with `engine` and `request` the refiner runs here, for this image alone."""
    # numpy, vtracer and torch: the stages load when the first image is finished
    from . import canvas, palette, sharpen, svg, transparency, upscale

    records: list[dict[str, Any]] = list(done or [])
    if plan.refine_strength and engine is not None and request is not None and not done:
        single = _one_seed(request, index)
        [image], record = refine_batch(engine, [image], single, plan.refine_strength)
        records.append(record)

    with stage("upscale" if plan.upscaler else "size", records, _size_settings(plan)) as record:
        image, info = upscale.to_size(image, plan.output_size, plan.upscaler, device=device)
        record["settings"].update(info or {})
        # Named for what ran: "upscale" when the model made passes, "size" for Lanczos alone.
        record["stage"] = "upscale" if (info or {}).get("passes") else "size"

    if plan.safe_area and plan.background:
        placed = {"safe_area": plan.safe_area, "background": plan.background}
        with stage("canvas", records, placed) as record:
            image, info = canvas.centre(image, plan.background, plan.canvas_tolerance, plan.safe_area)
            record["settings"].update(info)

    result = Finished(image=image, records=records)
    brand = plan.palette
    if brand is not None:
        scored = {"colours": list(brand.colours), "tolerance": brand.tolerance, "correct": plan.correct}
        with stage("palette", records, scored) as record:
            result.compliance_before, image = palette.score_and_correct(image, brand, correct=plan.correct)
        palette_record = record
    if plan.sharpen:
        with stage("sharpen", records, {"radius": plan.sharpen_radius, "amount": plan.sharpen_amount}):
            image = sharpen.unsharp(image, plan.sharpen_radius, plan.sharpen_amount)
    if plan.transparent and brand is not None and brand.background:
        settings = {"background": brand.background, "tolerance": brand.tolerance}
        with stage("transparent", records, settings):
            image = transparency.cut_out(image, brand.background, brand.tolerance)
    if brand is not None:
        # The after score is part of the palette stage's work (and its record), taken last.
        _timed_into(palette_record, lambda: _score_after(result, image, brand, palette.compliance))
        palette_record["settings"]["before"] = result.compliance_before
        palette_record["settings"]["after"] = result.compliance_after
    if plan.svg and brand is not None:
        with stage("svg", records, {"colours": len(brand.colours)}) as record:
            result.svg = svg.trace(image, brand)
            record["settings"]["bytes"] = len(result.svg.encode())
    result.image = image
    return result


def _score_after(result: Finished, image: Image, brand: Any, score: Callable[[Image, Any], float]) -> None:
    result.compliance_after = score(image, brand)


def _timed_into(record: dict[str, Any], work: Callable[[], None]) -> None:
    start = time.perf_counter()
    try:
        work()
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:
        raise FinishingError(record["stage"], without_paths(str(exc)) or exc.__class__.__name__) from exc
    record["seconds"] = round(record["seconds"] + time.perf_counter() - start, 4)


def _size_settings(plan: Plan) -> dict[str, Any]:
    up = plan.upscaler
    settings: dict[str, Any] = {"output_size": list(plan.output_size), "factor": plan.upscale}
    if up is None:
        return {**settings, "upscaler": "Lanczos"}
    return {**settings, "upscaler": up.name, "key": up.key, "scale": up.scale, "architecture": up.architecture}


def _one_seed(request: GenerationRequest, index: int) -> GenerationRequest:
    from dataclasses import replace

    seeds = request.seeds[index : index + 1] or request.seeds[:1]
    return replace(request, seeds=seeds)


def totals(records: list[list[dict[str, Any]]]) -> dict[str, float]:
    """Seconds per stage summed over a job's images, for the job's timings."""
    summed: dict[str, float] = {}
    for image_records in records:
        for record in image_records:
            summed[record["stage"]] = summed.get(record["stage"], 0.0) + float(record["seconds"])
    return {k: round(v, 4) for k, v in summed.items()}
