"""Runs one claimed job inside a worker process: load the model once, generate, store.

Imported only by the Celery task, so torch is loaded in workers alone.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import F
from django.utils import timezone

from . import previews, services
from .engine import Engine, EngineError, engine_class
from .engine.types import Cancelled, ControlNetSpec, GenerationRequest, IPAdapterSpec, LoraSpec, without_paths
from .finishing.pipeline import Finished, FinishingError, finish, refine_batch, totals
from .finishing.plan import Plan
from .logs import current_job
from .model_files import folder_size, local_weights
from .models import AssetPreset, GeneratedImage, GenerationJob, ImageModel, JobStatus
from .png_meta import png_info
from .thumbnails import attach_thumbnail

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

# model key -> loaded engine; lives as long as the worker process, so weights load once.
_engines: OrderedDict[str, Engine] = OrderedDict()
# One load at a time, even of different models: two loads at once could pass the memory budget
# (which counts loaded engines only), and the libraries' lazy imports are not thread-safe. So a
# job that arrives while the default model preloads waits for it; it says so (log, timings).
engines_lock = threading.Lock()
_loading: str | None = None  # the model being loaded under engines_lock, for that message


def note_prompt_cuts(job: GenerationJob, engine: Any) -> None:
    """Tell the designer when the model's encoders never read some of their own description
    (a template's end cut off is for staff: the training run page reports it)."""
    sent = job.params.get("prompt", "")
    description = " ".join(job.prompt.split())
    start = sent.find(description) if description else -1
    typed = (start, start + len(description)) if start >= 0 else None
    try:
        notes = engine.prompt_notes(sent, typed=typed)
    except Exception:  # counting tokens must never cost a render
        log.warning("Job %s: could not count the prompt's tokens", job.pk, exc_info=True)
        return
    if notes != job.notes:
        GenerationJob.objects.filter(pk=job.pk).update(notes=notes)


def run_job(job_id: str, *, worker: str) -> None:
    """Render what the job has not rendered yet and finish every image not finished yet: a
    retried attempt resumes, and "Retry finishing" (services.job_refinish) runs this with
    every image rendered, so it only finishes."""
    token = current_job.set(job_id)  # every log line of this job carries its id
    try:
        _run_job(job_id, worker=worker)
    finally:
        current_job.reset(token)


def _run_job(job_id: str, *, worker: str) -> None:
    job = services.job_claim(uuid.UUID(job_id), worker=worker)
    if job is None:
        log.info("Job %s is not to run here (ended, running elsewhere, or out of attempts)", job_id)
        return
    log.info("Job %s started on %s (attempt %d)", job.pk, worker, job.attempts)
    clock = Stopwatch()
    finisher = Finisher(job)
    with Heartbeat(job.pk, worker=worker):
        try:
            already = job.images.count()  # a retried attempt resumes after the images it stored
            pending = list(job.images.filter(finishing=[]).order_by("index"))  # rendered, not finished
            engine = None
            if already < job.images_total or (pending and finisher.plan.refine_strength):
                engine = load_engine(job.model_key, clock=clock, waiting=f"Job {job.pk}")
            finisher.engine = engine
            batch = max(1, job.params.get("batch_size") or settings.STUDIO_MAX_BATCH)
            for start in range(0, len(pending), batch):  # the refiner's batches, as when rendered
                rows = pending[start : start + batch]
                with clock.measure("finishing_before"):
                    finisher.rows(rows, [open_rendered(row) for row in rows])

            def on_images(first: int, images: list[Image]) -> None:
                with clock.measure("store"):
                    try:
                        rows = store_images(job, already + first, images)
                    except OSError as exc:  # a full disk, an unreachable blob store
                        raise EngineError(f"The images could not be stored ({exc}); try again later.") from exc
                with clock.measure("finishing"):
                    finisher.rows(rows, images)

            if engine is not None and already < job.images_total:
                note_prompt_cuts(job, engine)
                progress = Progress(job, already=already)
                request = build_request(job, skip=already)
                make_room_for_addons(engine, request, job.model_key)
                with clock.measure("run"):
                    engine.generate(
                        request,
                        max_batch=job.params.get("batch_size", settings.STUDIO_MAX_BATCH),
                        on_step=progress.on_step,
                        on_images=on_images,
                        on_preview=progress.on_preview,
                    )
        except FinishingError as exc:
            # The renders are stored: "Retry finishing" picks up from them.
            log.warning("Job %s: %s", job.pk, exc)
            services.job_fail(job.pk, str(exc))
            return
        except Cancelled:
            log.info("Job %s cancelled", job.pk)
            return
        except EngineError as exc:
            services.job_fail(job.pk, str(exc))
            return
        except SoftTimeLimitExceeded:
            services.job_fail(
                job.pk, f"The job took longer than {settings.CELERY_TASK_SOFT_TIME_LIMIT} s and was stopped."
            )
            return
        except Exception as exc:
            log.exception("Job %s failed", job.pk)
            services.job_fail(job.pk, f"Generation failed: {exc.__class__.__name__}: {without_paths(str(exc))}")
            return
        finally:
            previews.clear(job.pk)  # the stored images (or the job's end) replace them
    timings = clock.summary(finisher.stage_totals())
    services.job_complete(job.pk, timings=timings)
    log.info("Job %s complete: %s", job.pk, ", ".join(f"{k} {v:.3f} s" for k, v in timings.items()))


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


def preload_default_model() -> None:
    try:
        load_engine(settings.STUDIO_DEFAULT_MODEL)
    except EngineError as exc:
        log.warning("Default model not preloaded: %s", exc)
    except Exception:
        log.exception("Default model not preloaded")


def prepare_finishing() -> None:
    """What the asset types' finishing needs, made ready as the worker starts, so the first job
    does not pay for it: their upscalers loaded, the colour scratch tables allocated, and their
    palettes' lookup tables built where missing (in the background, at the lowest priority: the
    first jobs use the memo meanwhile)."""
    import numpy as np

    from .engine.devices import resolve_device
    from .finishing import colours, upscale
    from .finishing.plans import palette_of, upscaler_for
    from .finishing.table import judged

    colours.colours_of(np.zeros(1, dtype=np.uint32))  # maps the scratch tables' first pages
    for preset in AssetPreset.objects.select_related("upscaler"):
        if preset.use_upscaler and (ref := upscaler_for(preset)) is not None:
            try:
                upscale.load(upscale.upscaler_path(ref), resolve_device(settings.STUDIO_DEVICE))
            except Exception as exc:  # the job that needs it says so; the other presets go on
                log.warning("Upscaler %s not preloaded: %s", ref.key, exc)
        if (palette := palette_of(preset)) is not None:
            judged(palette).ready()


def load_engine(model_key: str, *, clock: Stopwatch | None = None, waiting: str = "A job") -> Engine:
    """The loaded engine for a model, loading it (and evicting others) if needed.

    Loaded engines stay in this process between jobs. When a new model would not fit the
    memory budget, the least recently used one goes first; the default model goes last.
    `clock` gets the time spent waiting for another load ("wait") and loading ("load").
    """
    clock = clock or Stopwatch()
    if not engines_lock.acquire(blocking=False):  # the preload thread (or a training import) has it
        log.info("%s waits for %s to finish loading", waiting, _loading or "another model")
        with clock.measure("wait"):
            engines_lock.acquire()
    try:
        with clock.measure("load"):
            return _load_engine(model_key)
    finally:
        engines_lock.release()


def _load_engine(model_key: str) -> Engine:
    global _loading
    if model_key in _engines:
        _engines.move_to_end(model_key)
        return _engines[model_key]
    model = ImageModel.objects.filter(key=model_key).first()
    if model is None:
        raise EngineError(f"Model {model_key!r} is not configured on this studio.")
    path = local_weights(model)
    _make_room(folder_size(path))
    log.info("Loading %s (%s) from %s", model.name, model.family, path)
    _loading = model_key
    try:
        _engines[model_key] = engine_class(model.family)(path, device=settings.STUDIO_DEVICE, options=model.options)
    finally:
        _loading = None
    return _engines[model_key]


def _make_room(needed: int, *, keep: str = "") -> None:
    """Unload the least recently used models (the default model last, `keep` never) until
    `needed` more bytes fit the budget."""
    budget = settings.STUDIO_MEMORY_BUDGET_GB * 2**30
    while _engines and sum(e.memory_bytes for e in _engines.values()) + _estimator_bytes() + needed > budget:
        others = [key for key in _engines if key != keep]
        victims = [key for key in others if key != settings.STUDIO_DEFAULT_MODEL] or others
        if not victims:
            log.warning("%s with its add-ons is over STUDIO_MEMORY_BUDGET_GB on its own", keep)
            return
        log.info("Unloading %s to stay within STUDIO_MEMORY_BUDGET_GB", victims[0])
        _engines.pop(victims[0]).unload()


def _estimator_bytes() -> int:
    """What the depth estimators this worker has read take (none before the first depth job:
    the module, and torch, are imported by that job)."""
    depth = sys.modules.get("generation.engine.depth")
    return depth.loaded_bytes() if depth is not None else 0


def make_room_for_estimator(folder: Path) -> None:
    """A depth preview reads the estimator outside a job: the models make room for it first."""
    from .engine.depth import is_read

    _make_room_for([] if is_read(folder) else [folder])


def make_room_for_addons(engine: Engine, request: GenerationRequest, model_key: str) -> None:
    """Add-ons are read by the job that first needs them: the other models make room first, as
    for a model of their size."""
    _make_room_for(engine.unread_addons(request), keep=model_key)


def _make_room_for(folders: list[Path], *, keep: str = "") -> None:
    needed = sum(folder_size(folder) for folder in folders if folder.is_dir())
    if needed:
        with engines_lock:
            _make_room(needed, keep=keep)


def build_request(job: GenerationJob, *, skip: int = 0) -> GenerationRequest:
    p = job.params
    return GenerationRequest(
        **_steering(p),
        strength=p.get("strength", 1.0),
        prompt=p["prompt"],
        negative_prompt=p.get("negative_prompt", ""),
        width=p["width"],
        height=p["height"],
        steps=p["steps"],
        guidance_scale=p["guidance_scale"],
        seeds=p["seeds"][skip:],
        loras=[LoraSpec(settings.STUDIO_LORA_ROOT / lora["path"], lora["strength"]) for lora in p.get("loras", [])],
    )


def _control_image(p: dict[str, Any]) -> Image:
    """What a ControlNet follows: the sketch on paper at the job's size (the engine finds its
    canny edges at the size the model draws), or the tile."""
    from .control.sketch import DERIVED, prepare

    sketch = _init_image(p["sketch"]["file"], sketch=True)
    mode = p["sketch"]["mode"]
    return prepare(sketch, "drawing" if mode in DERIVED else mode, (p["width"], p["height"]))


def _steering(p: dict[str, Any]) -> dict[str, Any]:
    """What the job is steered with beyond its prompt, read through the configured storage:
    the image it starts from, a mask, style references, a ControlNet's image, an edit's source."""
    steering: dict[str, Any] = {}
    if p.get("init_image"):
        steering["init_image"] = _start_image(p)
    if p.get("inpaint"):
        steering["mask_image"] = _mask_image(p["inpaint"])
    if p.get("references"):
        steering["references"] = [_init_image(r["file"], what="style reference") for r in p["references"]]
        if p.get("ip_adapter"):  # else the model's own pipeline takes them (FLUX.2 klein)
            steering["reference_strength"] = p.get("reference_strength", 0.6)
            steering["ip_adapter"] = _ip_adapter(p["ip_adapter"])
    if control := p.get("control"):
        steering |= {"control_image": _control_image(p), "control_scale": control["scale"]}
        steering["control_edges"] = p["sketch"]["mode"] if p["sketch"]["mode"] in ("canny", "depth") else ""
        if depth := control.get("depth"):
            steering["depth_estimator"] = Path(settings.STUDIO_MODELS_DIR) / depth["path"]
        steering["controlnet"] = _controlnet(control)
    if edit := p.get("edit"):
        steering["edit_images"] = [_on_white(_init_image(edit["file"], what="image this edit changes"))]
    return steering


def _on_white(image: Image) -> Image:
    """A cut-out (transparent) image on white, as the edit model sees a page."""
    from PIL import Image as PILImage

    if image.mode not in ("RGBA", "LA", "PA"):
        return image.convert("RGB")
    paper = PILImage.new("RGBA", image.size, (255, 255, 255, 255))
    return PILImage.alpha_composite(paper, image.convert("RGBA")).convert("RGB")


def _controlnet(record: dict[str, Any]) -> ControlNetSpec:
    return ControlNetSpec(Path(settings.STUDIO_MODELS_DIR) / record["path"])


def _ip_adapter(record: dict[str, Any]) -> IPAdapterSpec:
    return IPAdapterSpec(Path(settings.STUDIO_MODELS_DIR) / record["path"], record["weight_name"])


def _mask_image(inpaint: dict[str, Any]) -> Image:
    from PIL import Image as PILImage

    try:
        with default_storage.open(inpaint["mask_image"], "rb") as fh:
            return PILImage.open(fh).convert("L")
    except (OSError, ValueError) as exc:
        raise EngineError("The mask this job repaints is no longer available.") from exc


def _start_image(p: dict[str, Any]) -> Image:
    """What the job starts from: its sketch fitted to the render size, or the image it varies."""
    if "sketch" not in p:
        return _init_image(p["init_image"])
    from .control.sketch import prepare

    sketch = _init_image(p["init_image"], sketch=True)
    return prepare(sketch, p["sketch"].get("mode", "drawing"), (p["width"], p["height"]))


def _init_image(name: str, *, sketch: bool = False, what: str = "") -> Image:
    """The image a job starts from ("More like this", a sketch), read through the configured storage."""
    from PIL import Image as PILImage

    try:
        with default_storage.open(name, "rb") as fh:
            image = PILImage.open(fh)
            image.load()
    except (OSError, ValueError) as exc:
        what = what or ("sketch this job starts from" if sketch else "image these variations start from")
        raise EngineError(f"The {what} is no longer available.") from exc
    return image


def store_images(job: GenerationJob, first: int, images: list[Image]) -> list[GeneratedImage]:
    """Write each render (its PNG and its grid thumbnail) through the configured storage as soon
    as its batch is done; `rendered` keeps it when finishing replaces `file`."""
    rows = []
    for index, image in enumerate(images, start=first):
        seed = job.params["seeds"][index]
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", pnginfo=png_info(services.job_settings(job, seed=seed), _details(job)))
        row = GeneratedImage(job=job, index=index, seed=seed, width=image.width, height=image.height)
        row.file.save(f"{index + 1:02d}-{row.seed}.png", ContentFile(buffer.getvalue()), save=False)
        row.rendered.name = row.file.name
        attach_thumbnail(row, image)  # made here, once, so grids never resize on request
        row.save()
        rows.append(row)
    done = first + len(images)
    # The next batch counts its steps from 0; after the last one the job stays at its final step.
    step = 0 if done < job.images_total else F("progress_steps")
    GenerationJob.objects.filter(pk=job.pk).update(images_done=done, progress_step=step)
    return rows


def finishing_plan(job: GenerationJob) -> Plan:
    """The plan frozen at submission; a job from before finishing existed gets one that only
    makes sure of its size (Lanczos), so it runs as it always did."""
    frozen = job.params.get("finishing")
    if frozen:
        return Plan.from_params(frozen)
    return Plan(output_size=(int(job.params["width"]), int(job.params["height"])))


class Finisher:
    """Finishes a job's stored renders, batch by batch, and writes each finished image in one
    save once all its stages have succeeded (a failure leaves the row as rendered)."""

    def __init__(self, job: GenerationJob) -> None:
        self.job = job
        self.plan = finishing_plan(job)
        self.engine: Engine | None = None
        self.records: list[list[dict[str, Any]]] = []

    def rows(self, rows: list[GeneratedImage], images: list[Image]) -> None:
        refined: list[dict[str, Any] | None] = [None] * len(images)
        if self.plan.refine_strength and self.engine is not None:
            request = replace(build_request(self.job), seeds=[row.seed for row in rows], init_image=None)
            self._mark(rows[0].index)
            images, record = refine_batch(self.engine, images, request, self.plan.refine_strength)
            refined = [record] * len(images)
        for row, image, done in zip(rows, images, refined, strict=True):
            self._mark(row.index)
            before = [done] if done else None
            result = finish(image, self.plan, index=row.index, device=settings.STUDIO_DEVICE, done=before)
            try:
                write_finished(self.job, row, result, lossless=self.plan.correct)
            except OSError as exc:
                raise EngineError(f"The finished images could not be stored ({exc}); try again later.") from exc
            self.records.append(result.records)

    def _mark(self, index: int) -> None:
        """ "Finishing 2 of 4" on the job panel; `timings` is replaced when the job completes."""
        updated = GenerationJob.objects.filter(pk=self.job.pk, status=JobStatus.PROCESSING).update(
            timings={"finishing": index + 1}, heartbeat_at=timezone.now()
        )
        if not updated:  # cancelled, or reaped and handed to another worker
            raise Cancelled("The job is no longer running here.")

    def stage_totals(self) -> dict[str, float]:
        return totals(self.records)


def open_rendered(row: GeneratedImage) -> Image:
    """The render as the model drew it (`file` for rows stored before `rendered` existed)."""
    from PIL import Image as PILImage

    field = row.rendered if row.rendered else row.file
    with field.open("rb") as fh:
        image = PILImage.open(fh, formats=["PNG"])
        image.load()
    return image


def write_finished(job: GenerationJob, row: GeneratedImage, result: Finished, *, lossless: bool) -> None:
    """The finished PNG (with the job's settings), its WebP, SVG and thumbnail, then the row in one save."""
    from .finishing import svg

    image = result.image
    stem = f"{row.index + 1:02d}-{row.seed}-finished"
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=png_info(services.job_settings(job, seed=row.seed), _details(job)))
    webp = io.BytesIO()
    # Flat, palette-corrected art stays exact losslessly (and small); illustrations go lossy.
    image.save(webp, format="WEBP", **({"lossless": True} if lossless else {"quality": 90}), method=4)
    svg_text = svg.sanitise(result.svg) if result.svg else None  # what is stored is what is served
    if not row.rendered:  # stored before `rendered` existed: its PNG is the render
        row.rendered.name = row.file.name
    old = [str(f.name) for f in (row.file, row.webp, row.svg, row.thumbnail) if f and f.name != row.rendered.name]
    row.file.save(f"{stem}.png", ContentFile(buffer.getvalue()), save=False)
    row.webp.save(f"{stem}.webp", ContentFile(webp.getvalue()), save=False)
    if svg_text is not None:
        row.svg.save(f"{stem}.svg", ContentFile(svg_text.encode()), save=False)
    attach_thumbnail(row, image)
    row.width, row.height = image.size
    row.has_alpha = image.mode == "RGBA"
    row.compliance_before, row.compliance_after = result.compliance_before, result.compliance_after
    row.finishing = result.records
    row.save()
    for name in old:  # the render's thumbnail, or an earlier finishing's files
        if name not in {row.file.name, row.webp.name, row.svg.name, row.thumbnail.name}:
            row.file.storage.delete(name)


def _details(job: GenerationJob) -> dict[str, Any]:
    keys = ["prompt", "negative_prompt", "steps", "guidance_scale", "loras", "model", "width", "height"]
    keys += ["preset", "preset_version", "variation", "strength"]
    details = {k: job.params.get(k) for k in keys}
    # What steered it, each input named by its content hash (the files stay private in the
    # studio, and in the job's zip); storage paths are left out.
    for key in ("sketch", "references", "reference_strength", "inpaint", "edit", "control"):
        if key in job.params:
            details[key] = _without_paths(job.params[key])
    return {"job": str(job.pk), **details}


def _without_paths(value: Any) -> Any:
    """A copy of a steering record without its storage paths (never the job's own params)."""
    if isinstance(value, list):
        return [_without_paths(item) for item in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in ("file", "mask_image", "path")}
    return value


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
        previews.save(self.job_id, self.already + first, self.step, draw())
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
