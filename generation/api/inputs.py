"""Input images: a sketch uploaded once (multipart), then named by id in `POST /jobs`."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from django.http import FileResponse, HttpRequest
from django.shortcuts import get_object_or_404
from ninja import File, Router, Schema, UploadedFile
from ninja.errors import HttpError

from ..control.inpaint import store_mask
from ..control.inputs import MAX_BYTES, store_upload
from ..models import BrandReference, InputImage
from ..uploads import UploadError, bytes_label
from .common import absolute, user_of
from .errors import BODY, ERRORS, FieldError

router = Router(tags=["inputs"])


class InputOut(Schema):
    id: UUID
    sha256: str
    name: str
    width: int
    height: int
    url: str


def input_out(request: HttpRequest, row: InputImage) -> dict[str, Any]:
    return {
        "id": row.pk,
        "sha256": row.sha256,
        "name": row.name,
        "width": row.width,
        "height": row.height,
        "url": absolute(request, f"/api/v1/inputs/{row.pk}/file"),
    }


@router.post("/inputs", response={201: InputOut, **BODY})
def input_create(
    request: HttpRequest, file: File[UploadedFile], kind: Literal["sketch", "mask"] = "sketch"
) -> tuple[int, dict[str, Any]]:
    """Upload a sketch or, with ?kind=mask, an inpaint mask (multipart/form-data, field `file`:
    PNG, JPEG or WebP, at most 20 MB and 16.7 megapixels; a mask is white, or opaque, where the
    image should change). The same picture uploaded again answers with the same id."""
    if file.size and file.size > MAX_BYTES:
        raise HttpError(413, f"{file.name} is over {bytes_label(MAX_BYTES)}, the limit for an input image.")
    store = store_mask if kind == "mask" else store_upload
    try:
        row = store(user_of(request), file, file.name or "")
    except UploadError as exc:
        raise FieldError(f"{file.name}: {exc}", "file") from None
    return 201, input_out(request, row)


@router.get("/inputs/{input_id}", response={200: InputOut, **ERRORS})
def input_detail(request: HttpRequest, input_id: UUID) -> dict[str, Any]:
    return input_out(request, get_object_or_404(InputImage, pk=input_id, owner=user_of(request)))


@router.get("/inputs/{input_id}/file", response={200: None, **ERRORS})
def input_file(request: HttpRequest, input_id: UUID) -> FileResponse:
    """The stored PNG (flattened on white, at most 2048 px a side)."""
    row = get_object_or_404(InputImage, pk=input_id, owner=user_of(request))
    return FileResponse(row.file.open("rb"), content_type="image/png")


@router.get("/brand-references/{reference_id}/file", response={200: None, **ERRORS})
def brand_reference_file(request: HttpRequest, reference_id: int) -> FileResponse:
    """An asset type's brand reference, which its jobs follow as a style reference by default."""
    row = get_object_or_404(BrandReference, pk=reference_id)
    return FileResponse(row.file.open("rb"))
