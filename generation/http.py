"""What pages and the API share over HTTP: the typed htmx request, and the responses that serve a
user's files (thumbnail, WebP, zips) from storage, downloads with their content credentials."""

import io
from collections.abc import Callable, Iterable

from django.contrib.auth.models import User
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django_htmx.middleware import HtmxDetails
from PIL import Image

from .credentials.download import PNG, SVG, WEBP, credentialed
from .models import GeneratedImage, GenerationJob
from .stored import MissingFile, opened
from .zips import zip_stream

THUMBNAIL_MAX_AGE = 7 * 86400


class Request(HttpRequest):
    """What the studio's views receive: a signed-in user (login_required) and htmx details (middleware)."""

    htmx: HtmxDetails
    user: User


def thumbnail_response(image: GeneratedImage) -> FileResponse:
    """The grid-sized WebP. Images stored before thumbnails existed (or whose thumbnail is gone
    from storage) show their full PNG until `manage.py make_thumbnails` has run, cached
    briefly so the thumbnail takes over soon after."""
    if image.thumbnail:
        try:
            response = FileResponse(opened(image.thumbnail, "This image's thumbnail"), content_type="image/webp")
        except MissingFile:
            pass
        else:
            response["Cache-Control"] = f"private, max-age={THUMBNAIL_MAX_AGE}"  # never changes once made
            return response
    response = FileResponse(opened(image.file, "This image's PNG"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


def webp_response(image: GeneratedImage, *, download: bool) -> HttpResponse | FileResponse:
    """The finished WebP the worker stored (alpha kept); images from before finishing, or whose
    WebP is gone from storage, get one re-encoded from the PNG (lossless keeps flat brand colours exact)."""
    name = image.download_name.removesuffix(".png") + ".webp"
    if image.webp:
        try:
            webp = opened(image.webp, "This image's WebP")
        except MissingFile:
            pass  # made again from the PNG, below
        else:
            served = credentialed(webp, image, WEBP)
            stored = FileResponse(served, content_type="image/webp", as_attachment=download, filename=name)
            stored["Cache-Control"] = "private, max-age=86400"
            return stored
    buffer = io.BytesIO()
    with opened(image.file, "This image's PNG") as source:
        Image.open(source, formats=["PNG"]).save(buffer, format="WEBP", lossless=True)
    buffer.seek(0)
    with credentialed(buffer, image, WEBP) as served:
        response = HttpResponse(served.read(), content_type="image/webp")
    response["Content-Disposition"] = f'{"attachment" if download else "inline"}; filename="{name}"'
    return response


def png_response(image: GeneratedImage, *, download: bool) -> FileResponse:
    """The PNG (settings embedded) with its content credentials, streamed from storage."""
    png = credentialed(opened(image.file, "This image's PNG"), image, PNG)
    return FileResponse(png, content_type="image/png", as_attachment=download, filename=image.download_name)


# An SVG is a document that can carry script: served so that a browser never runs any, even
# opened on its own (sanitised when stored, and this policy besides).
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def svg_response(image: GeneratedImage, *, download: bool) -> FileResponse:
    """The traced SVG with its content credentials; each caller says in its own way why an image
    without one has none."""
    svg = credentialed(opened(image.svg, "This image's SVG"), image, SVG)
    name = image.download_name.removesuffix(".png") + ".svg"
    response = FileResponse(svg, content_type="image/svg+xml", as_attachment=download, filename=name)
    response["Content-Security-Policy"] = SVG_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    return response


def zip_response(
    images: Iterable[GeneratedImage], filename: str, *, folder: Callable[[GeneratedImage], str] | None = None
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(zip_stream(images, folder=folder), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def job_zip_response(job: GenerationJob) -> StreamingHttpResponse:
    """A job's images as one streamed zip (the page's download and the API's)."""
    images = job.images.select_related("job__preset").order_by("index")
    return zip_response(images.iterator(), f"{job.preset.slug}-{str(job.pk)[:8]}.zip")
