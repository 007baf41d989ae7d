"""A submitted or library image's file, as the review and library pages and the API serve it:
through `credentialed`, like every other download (generation/credentials/download.py)."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpResponse

from ..credentials.download import PNG, SVG, credentialed
from ..http import webp_response
from ..models import GeneratedImage
from ..stored import opened

FORMATS = ("png", "webp", "svg")
# An SVG is markup a browser would run: served so that nothing in it can script, load or sniff.
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def image_file_response(image: GeneratedImage, format: str, *, download: bool) -> HttpResponse | FileResponse:
    """PNG (settings embedded), WebP or SVG, with content credentials; a 404 that says why for a
    format the image does not have."""
    if format == "webp":
        return webp_response(image, download=download)
    if format == "svg":
        if not image.svg:
            raise Http404("This image has no SVG: only icons and logo illustrations are traced. Ask for png or webp.")
        name = image.download_name.removesuffix(".png") + ".svg"
        svg = credentialed(opened(image.svg, "This image's SVG"), image, SVG)
        response = FileResponse(svg, content_type="image/svg+xml", as_attachment=download, filename=name)
        response["Content-Security-Policy"] = SVG_POLICY
        response["X-Content-Type-Options"] = "nosniff"
        return response
    png = credentialed(opened(image.file, "This image's PNG"), image, PNG)
    return FileResponse(png, content_type="image/png", as_attachment=download, filename=image.download_name)
