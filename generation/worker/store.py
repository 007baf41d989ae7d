"""Writing a job's images through storage: each render as its batch ends, then each finished image
(PNG with the job's settings, WebP, SVG, thumbnail) in one save."""

from __future__ import annotations

import io
from typing import Any

from django.core.files.base import ContentFile
from django.db.models import F
from PIL import Image as PILImage
from PIL.Image import Image

from ..finishing.pipeline import Finished
from ..jobs.recipe import job_settings
from ..models import GeneratedImage, GenerationJob
from ..png_meta import png_info
from ..thumbnails import attach_thumbnail


def store_images(job: GenerationJob, first: int, images: list[Image]) -> list[GeneratedImage]:
    """Write each render (its PNG and its grid thumbnail) through the configured storage as soon
    as its batch is done; `rendered` keeps it when finishing replaces `file`."""
    rows = []
    for index, image in enumerate(images, start=first):
        seed = job.params["seeds"][index]
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", pnginfo=png_info(job_settings(job, seed=seed), _details(job)))
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


def open_rendered(row: GeneratedImage) -> Image:
    """The render as the model drew it (`file` for rows stored before `rendered` existed)."""
    field = row.rendered if row.rendered else row.file
    with field.open("rb") as fh:
        image = PILImage.open(fh, formats=["PNG"])
        image.load()
    return image


def write_finished(job: GenerationJob, row: GeneratedImage, result: Finished, *, lossless: bool) -> None:
    """The finished PNG (with the job's settings), its WebP, SVG and thumbnail, then the row in one save."""
    from ..finishing import svg  # vtracer and numpy: worker side

    image = result.image
    stem = f"{row.index + 1:02d}-{row.seed}-finished"
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=png_info(job_settings(job, seed=row.seed), _details(job)))
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
