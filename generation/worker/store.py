"""Writing a job's images through storage: each render as its batch ends, then each finished image
(PNG with the job's settings, WebP, SVG, thumbnail) in one save.

The files are written first, then the rows saved under the worker's lease (jobs/lease.py). When
that fails (a full disk, a lost lease, anything) the files written for those rows are removed:
no file is left that no row names."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from functools import cache
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import F
from PIL import Image as PILImage
from PIL.Image import Image

from ..credentials.watermark import embed as watermarked
from ..finishing.pipeline import Finished
from ..jobs.lease import Lease
from ..jobs.recipe import job_settings
from ..models import GeneratedImage, GenerationJob
from ..png_meta import png_info
from ..thumbnails import attach_thumbnail

log = logging.getLogger(__name__)

FIELDS = ("file", "rendered", "webp", "svg", "thumbnail")
STORE_THREADS = 4  # images of one batch encoded and written at once


def store_images(job: GenerationJob, lease: Lease, first: int, images: list[Image]) -> list[GeneratedImage]:
    """Write each render (its PNG and its grid thumbnail) through the configured storage as soon
    as its batch is done, then the batch's rows in one transaction under the lease; `rendered`
    keeps the render when finishing replaces `file`.

    The images are encoded and written side by side in threads (PNG's zlib and storage's I/O let
    go of the GIL): the designer waits for the slowest image, not for the sum of them."""
    made: list[GeneratedImage] = []
    with _removed_on_failure(lambda: _names(made)):
        # Read here, not in the threads: the job's preset is a query, and the threads have no connection.
        infos = [
            png_info(job_settings(job, seed=job.params["seeds"][i]), _details(job)) for i in _indexes(first, images)
        ]
        futures = [
            _pool().submit(_write_render, job, index, image, info)
            for index, image, info in zip(_indexes(first, images), images, infos, strict=True)
        ]
        wait(futures)
        made += [future.result() for future in futures if future.exception() is None]
        for future in futures:  # every file written is in `made`: the first failure removes them all
            if (exc := future.exception()) is not None:
                raise exc
        rows = sorted(made, key=lambda row: row.index)
        done = first + len(images)
        # The next batch counts its steps from 0; after the last one the job stays at its final step.
        step = 0 if done < job.images_total else F("progress_steps")
        with lease.holding():
            for row in rows:
                row.save()
            lease.update(images_done=done, progress_step=step)
    return rows


@cache
def _pool() -> ThreadPoolExecutor:
    """One pool per worker process, made on first use (after the pool process forks): starting
    threads for every batch cost more than encoding a small image."""
    return ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix="store")


def _indexes(first: int, images: list[Image]) -> range:
    return range(first, first + len(images))


def _write_render(job: GenerationJob, index: int, image: Image, info: Any) -> GeneratedImage:
    seed = job.params["seeds"][index]
    row = GeneratedImage(job=job, index=index, seed=seed, width=image.width, height=image.height)
    buffer = io.BytesIO()
    # The short id in the stored pixels, here in the store's threads: off the job's critical path.
    watermarked(image, row.pk).save(buffer, format="PNG", pnginfo=info)
    try:
        row.file.save(f"{index + 1:02d}-{row.seed}.png", ContentFile(buffer.getvalue()), save=False)
        row.rendered.name = row.file.name
        attach_thumbnail(row, image)  # made here, once, so grids never resize on request
    except BaseException:
        _remove(_names([row]))  # this image's own files: its row never reaches the caller
        raise
    return row


def _names(rows: Iterable[GeneratedImage]) -> set[str]:
    return {str(name) for row in rows for field in FIELDS if (name := getattr(row, field).name)}


@contextmanager
def _removed_on_failure(written: Any) -> Iterator[None]:
    """Remove the files `written()` names when the block fails: rows that were never saved (or
    were rolled back) leave nothing in storage."""
    try:
        yield
    except BaseException:
        _remove(written())
        raise


def _remove(names: Iterable[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:  # the storage may be what failed: say so, the error that matters goes on
            log.warning("Could not remove %s after a failed write", name, exc_info=True)


def open_rendered(row: GeneratedImage) -> Image:
    """The render as the model drew it (`file` for rows stored before `rendered` existed)."""
    field = row.rendered if row.rendered else row.file
    with field.open("rb") as fh:
        image = PILImage.open(fh, formats=["PNG"])
        image.load()
    return image


def write_finished(
    job: GenerationJob, lease: Lease, finished: list[tuple[GeneratedImage, Image, Finished]], *, lossless: bool
) -> None:
    """Each finished PNG (with the job's settings), its WebP, SVG and thumbnail, encoded and
    written side by side in the store's threads, then the rows in one transaction under the
    lease; the files they replaced go after that save, the new ones if anything fails. Each comes
    with the render it was finished from: where finishing changed no pixel, the render's PNG and
    thumbnail stay the image's."""
    infos = [png_info(job_settings(job, seed=row.seed), _details(job)) for row, _, _ in finished]  # queries: here
    kept: set[str] = set()
    for row, _, _ in finished:
        row.job = job  # the upload path reads it: cached here, the threads have no connection
        if not row.rendered:  # stored before `rendered` existed: its PNG is the render
            row.rendered.name = row.file.name
        kept |= {str(f.name) for f in (row.file, row.rendered, row.webp, row.svg, row.thumbnail) if f}
    rows = [row for row, _, _ in finished]
    with _removed_on_failure(lambda: _names(rows) - kept):
        futures = [
            _pool().submit(_write_finished_files, row, render, result, info, lossless)
            for (row, render, result), info in zip(finished, infos, strict=True)
        ]
        wait(futures)
        for future in futures:
            if (exc := future.exception()) is not None:
                raise exc
        with lease.holding():
            for row in rows:
                row.save()
    # The renders' thumbnails, or an earlier finishing's files: named by no field now.
    _remove(kept - _names(rows))


def _write_finished_files(row: GeneratedImage, render: Image, result: Finished, info: Any, lossless: bool) -> None:
    from ..finishing import svg  # vtracer and numpy: worker side

    image = result.image
    marked = watermarked(image, row.pk)  # every file of it carries the mark; `image` stays for the comparison
    row.width, row.height = image.size
    row.has_alpha = image.mode == "RGBA"
    row.compliance_before, row.compliance_after = result.compliance_before, result.compliance_after
    row.finishing = result.records
    stem = f"{row.index + 1:02d}-{row.seed}-finished"
    webp = io.BytesIO()
    # Flat, palette-corrected art stays exact losslessly (and small); illustrations go lossy.
    marked.save(webp, format="WEBP", **({"lossless": True} if lossless else {"quality": 90}), method=4)
    row.webp.save(f"{stem}.webp", ContentFile(webp.getvalue()), save=False)
    if result.svg:
        svg_text = svg.sanitise(result.svg)  # what is stored is what is served
        row.svg.save(f"{stem}.svg", ContentFile(svg_text.encode()), save=False)
    if row.file.name == row.rendered.name and _same_pixels(image, render):
        return  # finishing changed no pixel: the render's PNG and thumbnail are the finished ones
    buffer = io.BytesIO()
    marked.save(buffer, format="PNG", pnginfo=info)
    row.file.save(f"{stem}.png", ContentFile(buffer.getvalue()), save=False)
    attach_thumbnail(row, image)


def _same_pixels(a: Image, b: Image) -> bool:
    return a.size == b.size and a.mode == b.mode and a.tobytes() == b.tobytes()


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
