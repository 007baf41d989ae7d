"""Images: their JSON shape and their files (PNG with settings embedded, WebP, the traced SVG,
or a grid-sized WebP thumbnail)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from django.http import FileResponse, HttpRequest
from ninja import Field, Router, Schema
from ninja.errors import HttpError

from ..http import png_response, svg_response, thumbnail_response, webp_response
from ..models import GeneratedImage
from ..templatetags.image_tiles import id_url
from .common import absolute, own_image
from .errors import ERRORS

router = Router(tags=["downloads"])


class ComplianceOut(Schema):
    before: float | None = Field(description="Share of on-brand pixels (0–1) of the render; null: no palette")
    after: float | None = Field(description="The same share of the finished image")
    floor: float | None = Field(description="The asset type's floor when the job was submitted; null: none")
    flagged: bool = Field(description="The finished image scores below the floor")


class StageOut(Schema):
    stage: str
    seconds: float
    settings: dict[str, Any]


class ImageOut(Schema):
    id: UUID
    index: int
    seed: int
    width: int
    height: int
    url: str
    png_url: str
    webp_url: str
    svg_url: str | None = Field(description="Only for asset types traced to SVG (icons, logo illustrations)")
    thumbnail_url: str
    page_url: str
    favorite: bool
    has_alpha: bool
    compliance: ComplianceOut
    finishing: list[StageOut] = Field(description="What finishing did to this image, stage by stage, in order")


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
        "svg_url": absolute(request, file_url + "?format=svg") if image.svg else None,
        "thumbnail_url": absolute(request, id_url("api-v1:image_thumbnail", image.pk)),
        "page_url": absolute(request, id_url("image", image.pk)),
        "favorite": image.pk in starred,
        "has_alpha": image.has_alpha,
        "compliance": compliance_out(image),
        "finishing": [_stage_out(record) for record in image.finishing or [] if isinstance(record, dict)],
    }


def compliance_out(image: GeneratedImage) -> dict[str, Any]:
    """The scores, and whether the image falls below the floor frozen into its job's plan."""
    floor = _plan(image).get("floor")
    score = image.compliance_after if image.compliance_after is not None else image.compliance_before
    return {
        "before": image.compliance_before,
        "after": image.compliance_after,
        "floor": floor,
        "flagged": floor is not None and score is not None and score < floor,
    }


def _plan(image: GeneratedImage) -> dict[str, Any]:
    # Jobs submitted before finishing existed have no plan in their params.
    return image.job.params.get("finishing") or {}


def _stage_out(record: dict[str, Any]) -> dict[str, Any]:
    # The worker writes these records; a field it left out must not turn a listing into a 500.
    return {
        "stage": str(record.get("stage", "")),
        "seconds": float(record.get("seconds") or 0.0),
        "settings": record.get("settings") or {},
    }


BINARY = {"schema": {"type": "string", "format": "binary"}}
FILE_CONTENT = {"image/png": BINARY, "image/webp": BINARY, "image/svg+xml": BINARY}


@router.get(
    "/images/{image_id}/file",
    response={200: None, **ERRORS},
    url_name="image_file",
    openapi_extra={"responses": {"200": {"description": "The image file", "content": FILE_CONTENT}}},
)
def image_file(request: HttpRequest, image_id: UUID, format: Literal["png", "webp", "svg"] = "png") -> Any:
    """One image as PNG (with its settings embedded), WebP (alpha kept) or, for asset types traced
    to SVG, the SVG (a 404 naming why for any other image), each with its content credentials
    (the IPTC source type in XMP, and a signed C2PA manifest where the studio has a certificate)."""
    image = own_image(request, image_id)
    if format == "svg":
        return _svg(image)
    if format == "webp":
        return webp_response(image, download=True)
    return png_response(image, download=False)


def _svg(image: GeneratedImage) -> FileResponse:
    if not image.svg:
        if _plan(image).get("svg"):
            raise HttpError(404, "This image has no SVG: its tracing did not finish. Retry finishing on its job.")
        raise HttpError(404, "This asset type is not traced to SVG: ask for format=png or format=webp.")
    return svg_response(image, download=True)


# What the thumbnail answers, for the schema (and so for schemathesis' checks of the responses).
THUMBNAIL_CONTENT = {"image/webp": BINARY, "image/png": BINARY}


@router.get(
    "/images/{image_id}/thumbnail",
    response={200: None, **ERRORS},
    url_name="image_thumbnail",
    openapi_extra={"responses": {"200": {"description": "The thumbnail", "content": THUMBNAIL_CONTENT}}},
)
def image_thumbnail(request: HttpRequest, image_id: UUID) -> Any:
    """A WebP of at most 384 px on its longest side, for lists and grids (transparency kept).
    Images stored before thumbnails existed answer their full PNG until the studio makes theirs."""
    return thumbnail_response(own_image(request, image_id))
