"""Images people upload (training sets, sketches and references): read by content, never by
file name, with the byte and pixel limits checked before anything is decoded.

No torch here: the web process reads uploads.
"""

from __future__ import annotations

import io

from PIL import Image

# What Pillow calls each format it opens here -> the extension a stored copy keeps. MPO is what
# many phones and cameras write: a JPEG whose first frame is the picture.
FORMATS = {"PNG": "png", "JPEG": "jpg", "MPO": "jpg", "WEBP": "webp"}
OPENERS = ["PNG", "JPEG", "WEBP"]  # Pillow's JPEG opener answers MPO files too
MAX_PIXELS = 40_000_000  # well above 6000x6000; a decompression bomb claims far more


class UploadError(ValueError):
    """What is wrong with an upload, in words for the person who sent it."""


def read_image(data: bytes, *, max_bytes: int, max_pixels: int = MAX_PIXELS) -> tuple[Image.Image, str]:
    """The decoded image (an MPO's first frame) and its file extension, or UploadError saying what
    is wrong. Every upload path reads images through here, so whatever Pillow raises for a file
    becomes the reason, never a server error."""
    if len(data) > max_bytes:
        raise UploadError(f"over {bytes_label(max_bytes)}")
    try:
        image = Image.open(io.BytesIO(data), formats=OPENERS)
    except Image.DecompressionBombError:
        raise UploadError(_claims_too_many_pixels(data, max_pixels)) from None
    except Exception:
        raise UploadError("not a PNG, JPEG or WebP image") from None
    if image.width * image.height > max_pixels:  # known from the header, before any decoding
        raise UploadError(too_many_pixels(image.width, image.height, limit=max_pixels))
    try:
        image.load()  # an MPO loads its first frame
    except Image.DecompressionBombError:
        raise UploadError(_claims_too_many_pixels(data, max_pixels)) from None
    except Exception:
        raise UploadError("the image data is damaged") from None
    return image, FORMATS[str(image.format)]


def _claims_too_many_pixels(data: bytes, limit: int) -> str:
    try:
        return too_many_pixels(*header_size(data), limit=limit)
    except Exception:  # a header Pillow refuses even to size (its own bomb check, on WebP)
        return f"its header claims more pixels than Pillow will open; the limit is {limit:,}"


def bytes_label(limit: int) -> str:
    """A byte limit as people say it: "10,000 bytes", "50 MB", "1 GB"."""
    for unit, size in (("GB", 2**30), ("MB", 2**20)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit:,} bytes"


def too_many_pixels(width: int, height: int, *, limit: int = MAX_PIXELS) -> str:
    return f"{width}×{height} is {width * height:,} pixels; the limit is {limit:,}"


def header_size(data: bytes) -> tuple[int, int]:
    """The size an image's header claims. Pillow's own bomb check (far above MAX_PIXELS) refuses
    to open the image at all; its format classes read just the header, without that check."""
    for name in OPENERS:
        factory, accept = Image.OPEN[name]
        if accept is None or accept(data[:16]):
            return factory(io.BytesIO(data)).size  # type: ignore[call-arg]
    raise UploadError("not a PNG, JPEG or WebP image")
