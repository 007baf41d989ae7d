"""Images: their JSON shape and their files (PNG with settings embedded, lossless WebP, or a
grid-sized WebP thumbnail)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from django.http import FileResponse, HttpRequest
from ninja import Router, Schema

from .. import views
from ..models import GeneratedImage
from ..templatetags.studio_urls import id_url
from .common import absolute, own_image
from .errors import ERRORS

router = Router(tags=["downloads"])


class ImageOut(Schema):
    id: UUID
    index: int
    seed: int
    width: int
    height: int
    url: str
    png_url: str
    webp_url: str
    thumbnail_url: str
    page_url: str
    favorite: bool


def image_out(request: HttpRequest, image: GeneratedImage, starred: set[Any]) -> dict[str, Any]:
    # id_url: a job's images repeat these URLs; reversing each of them costs more than the rest.
    file_url = id_url("api-v1:image_file", image.pk)
    return {
        "id": image.pk,
        "index": image.index,
        "seed": image.seed,
        "width": image.width,
        "height": image.height,
        "url": absolute(request, file_url),
        "png_url": absolute(request, file_url + "?format=png"),
        "webp_url": absolute(request, file_url + "?format=webp"),
        "thumbnail_url": absolute(request, id_url("api-v1:image_thumbnail", image.pk)),
        "page_url": absolute(request, id_url("image", image.pk)),
        "favorite": image.pk in starred,
    }


@router.get("/images/{image_id}/file", response={200: None, **ERRORS}, url_name="image_file")
def image_file(request: HttpRequest, image_id: UUID, format: Literal["png", "webp"] = "png") -> Any:
    """One image as PNG (with its settings embedded) or lossless WebP."""
    image = own_image(request, image_id)
    if format == "webp":
        return views._webp(image, download=True)
    return FileResponse(image.file.open("rb"), content_type="image/png", filename=image.download_name)


# What the thumbnail answers, for the schema (and so for schemathesis' checks of the responses).
THUMBNAIL_CONTENT = {
    "image/webp": {"schema": {"type": "string", "format": "binary"}},
    "image/png": {"schema": {"type": "string", "format": "binary"}},
}


@router.get(
    "/images/{image_id}/thumbnail",
    response={200: None, **ERRORS},
    url_name="image_thumbnail",
    openapi_extra={"responses": {"200": {"description": "The thumbnail", "content": THUMBNAIL_CONTENT}}},
)
def image_thumbnail(request: HttpRequest, image_id: UUID) -> Any:
    """A WebP of at most 384 px on its longest side, for lists and grids (transparency kept).
    Images stored before thumbnails existed answer their full PNG until the studio makes theirs."""
    return views.thumbnail_response(own_image(request, image_id))
