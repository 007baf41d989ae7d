"""A submitted or library image's file, as the review and library pages and the API serve it:
through `credentialed`, like every other download (generation/credentials/download.py)."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpResponse

from ..http import png_response, svg_response, webp_response
from ..models import GeneratedImage

FORMATS = ("png", "webp", "svg")


def image_file_response(image: GeneratedImage, format: str, *, download: bool) -> HttpResponse | FileResponse:
    """PNG (settings embedded), WebP or SVG, with content credentials; a 404 that says why for a
    format the image does not have."""
    if format == "webp":
        return webp_response(image, download=download)
    if format == "svg":
        if not image.svg:
            raise Http404("This image has no SVG: only icons and logo illustrations are traced. Ask for png or webp.")
        return svg_response(image, download=download)
    return png_response(image, download=download)
