"""A designer's input images: checked like every upload, flattened, stored once per content."""

from __future__ import annotations

import hashlib
import io
import uuid
from pathlib import PurePosixPath
from typing import IO, Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from PIL import Image, ImageOps

from ..models import GeneratedImage, InputImage
from ..uploads import UploadError, read_image

MAX_BYTES = 20 * 2**20
MAX_PIXELS = 4096 * 4096
MAX_SIDE = 2048  # stored no larger: every model here renders at most this, and a job resizes to its own size
MIN_SIDE = 16
# Wider than this, a picture stored at MAX_SIDE has too few rows left to steer a job with (one of
# 100000×16 was stored as 2048×1 and failed its job on the worker): refused at upload instead.
MAX_RATIO = 8


def store_upload(owner: Any, upload: IO[bytes], name: str = "") -> InputImage:
    """An uploaded image as the owner's InputImage, or UploadError saying what is wrong."""
    data = upload.read(MAX_BYTES + 1)
    image, _ = read_image(data, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
    if min(image.size) < MIN_SIDE:
        raise UploadError(f"{image.width}×{image.height} px is too small to steer with; at least {MIN_SIDE} px a side")
    if max(image.size) > MAX_RATIO * min(image.size):
        ratio = max(image.size) / min(image.size)
        raise UploadError(
            f"{image.width}×{image.height} px is {ratio:.0f}:1; a picture to steer with may be at most {MAX_RATIO}:1"
        )
    return store_image(owner, image, PurePosixPath(name or str(getattr(upload, "name", ""))).name)


def from_studio_image(owner: Any, image: GeneratedImage) -> InputImage:
    """One of the owner's studio images ("Use as sketch") as an InputImage."""
    try:
        with default_storage.open(str(image.file.name), "rb") as fh:
            picture = Image.open(fh)
            picture.load()
    except (OSError, ValueError) as exc:
        raise UploadError("That studio image's file is no longer available.") from exc
    return store_image(owner, picture, f"studio image {image.pk}")


def store_image(owner: Any, image: Image.Image, name: str, *, flatten: bool = True) -> InputImage:
    """Stored once per content; `flatten=False` keeps an image already made ready (a mask)."""
    flat = _flattened(image) if flatten else image
    buffer = io.BytesIO()
    flat.save(buffer, format="PNG", optimize=False)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    if (existing := _existing(owner, digest)) is not None:
        return existing
    row = InputImage(owner=owner, sha256=digest, name=name[:200], width=flat.width, height=flat.height)
    try:
        with transaction.atomic():
            row.file.save(f"{digest}.png", ContentFile(data), save=True)
    except IntegrityError:  # the same picture sent twice at once: the other request stored it
        default_storage.delete(str(row.file.name))
        return InputImage.objects.get(owner=owner, sha256=digest)
    return row


def _existing(owner: Any, digest: str) -> InputImage | None:
    return InputImage.objects.filter(owner=owner, sha256=digest).first()


def _flattened(image: Image.Image) -> Image.Image:
    """Upright (EXIF), on white where transparent (a sketch's paper), RGB, at most MAX_SIDE."""
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, rgba)
    image = image.convert("RGB")
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image


def owned_input(owner: Any, pk: Any) -> InputImage | None:
    """The owner's InputImage with that id, or None (anyone else's id, or no id, is not found)."""
    try:
        key = uuid.UUID(str(pk))
    except ValueError:
        return None
    return InputImage.objects.filter(owner=owner, pk=key).first()
