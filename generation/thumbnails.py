"""Small WebP copies of generated images, for grids and lists.

Grids used to load every full-size PNG (about 250 KB at 1024 px, several MB at 4096 px). The
worker now writes a WebP of at most THUMBNAIL_SIDE px next to each PNG, through the same
storage (so just as private); old images get theirs from `manage.py make_thumbnails`.
Pillow only: the web process may import this, never torch.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile

from .models import GeneratedImage

if TYPE_CHECKING:
    from PIL.Image import Image

THUMBNAIL_SIDE = 384
# Lossy is fine at grid size and several times smaller than lossless; the full PNG stays exact.
WEBP_QUALITY = 85
# libwebp's effort, 0-6: 2 encodes a grid thumbnail in less than half the time of 4, a few per cent
# larger; the worker makes one per image on the job's way to done.
WEBP_METHOD = 2


def thumbnail_bytes(image: Image) -> bytes:
    """A WebP no larger than THUMBNAIL_SIDE on its longest side, keeping the aspect ratio and
    any transparency (never scaled up: a 64 px image stays 64 px)."""
    from PIL import Image as PILImage

    copy = image.convert("RGBA" if _has_alpha(image) else "RGB")
    copy.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), PILImage.Resampling.LANCZOS)
    buffer = io.BytesIO()
    copy.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    return buffer.getvalue()


def _has_alpha(image: Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def thumbnail_name(row: GeneratedImage) -> str:
    """Next to its PNG (same folder, same stem), so both go wherever the storage puts the PNG."""
    return f"{str(row.file.name).rsplit('/', 1)[-1].removesuffix('.png')}-thumb.webp"


def attach_thumbnail(row: GeneratedImage, image: Image) -> None:
    """Writes the thumbnail to storage and sets the field; saving the row is the caller's."""
    row.thumbnail.save(thumbnail_name(row), ContentFile(thumbnail_bytes(image)), save=False)


def backfill(row: GeneratedImage) -> bool:
    """Makes the missing thumbnail of an image stored before thumbnails existed, from its PNG.

    False when another run (or a worker) recorded one first; the copy made here is then removed.
    Raises OSError / ValueError / DecompressionBombError when the PNG cannot be read.
    """
    from PIL import Image as PILImage

    with row.file.open("rb") as fh:
        image = PILImage.open(fh, formats=["PNG"])
        image.load()
    attach_thumbnail(row, image)
    name = str(row.thumbnail.name)
    if GeneratedImage.objects.filter(pk=row.pk, thumbnail="").update(thumbnail=name):
        return True
    row.thumbnail.storage.delete(name)
    return False
