"""Verify: any file in, and whether this studio made it (unchanged, or changed after download)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from django.urls import reverse
from ninja import Field, File, Router, Schema, UploadedFile
from ninja.errors import HttpError

from ..auth import is_reviewer
from ..credentials import verify as provenance
from ..templatetags.image_tiles import id_url
from ..uploads import UploadError, bytes_label
from .common import absolute, user_of
from .errors import BODY, FieldError

router = Router(tags=["verify"])


class ImageRef(Schema):
    id: UUID
    job_id: UUID
    page_url: str | None = Field(description="The image's page, for its owner")
    file_url: str | None = Field(description="The image's PNG through the API, for its owner")


class StepOut(Schema):
    kind: str = Field(description="edit, inpaint or variation: how the next image was made from this one")
    image_id: str
    job_id: UUID | None = Field(description="Null once the image was deleted")
    admin_url: str | None


class VerifyOut(Schema):
    verdict: Literal["unmodified", "changed", "none"]
    message: str
    manifest: Literal["intact", "changed", "damaged", "untrusted", "absent"] = Field(
        description="intact: ours and the file is what we signed; changed: ours, the content changed; "
        "damaged: C2PA data that cannot be read; untrusted: signed by someone else; absent: none"
    )
    watermark: str | None = Field(description="The id prefix (8 hex digits) the pixels carry, where found")
    image: ImageRef | None = Field(description="The studio image the credentials name, for its owner and staff")
    job_admin_url: str | None = Field(description="For staff: the image's job in the admin")
    lineage: list[StepOut] = Field(description="For staff: the images it was made from, nearest first")


@router.post("/verify", response={200: VerifyOut, **BODY}, url_name="verify")
def verify_file(request: HttpRequest, file: File[UploadedFile]) -> dict[str, Any]:
    """Upload any file (multipart/form-data, field `file`): a PNG, WebP, JPEG or SVG. The answer
    says whether this studio made it: `unmodified` (its signed manifest is ours and intact),
    `changed` (the manifest is broken or gone, but the watermark names a studio image), or `none`.
    A file that is not an image, or a damaged one, is a 400 that says so."""
    if file.size and file.size > provenance.MAX_BYTES:
        raise HttpError(413, f"{file.name} is over {bytes_label(provenance.MAX_BYTES)}.")
    try:
        finding = provenance.verify(file.read())
    except UploadError as exc:
        raise FieldError(f"{file.name}: {exc}.", "file", status=400) from None
    user = user_of(request)
    image = finding.image if finding.image is not None and provenance.may_see(user, finding.image) else None
    staff = image is not None and user.is_staff
    # Reviewers (staff among them) judge where a file came from.
    steps = provenance.lineage(image) if image is not None and is_reviewer(user) else []
    return {
        "verdict": finding.verdict.value,
        "message": finding.message,
        "manifest": finding.manifest.value,
        "watermark": finding.mark.short_id if finding.mark else None,
        "image": _image_ref(request, image, owner=image is not None and image.job.owner_id == user.pk),
        "job_admin_url": _admin_url(request, image.job_id) if staff and image is not None else None,
        "lineage": [_step(request, step, staff=staff) for step in steps],
    }


def _image_ref(request: HttpRequest, image: Any, *, owner: bool) -> dict[str, Any] | None:
    if image is None:
        return None
    return {
        "id": image.pk,
        "job_id": image.job_id,
        "page_url": absolute(request, id_url("image", image.pk)) if owner else None,
        "file_url": absolute(request, id_url("api-v1:image_file", image.pk)) if owner else None,
    }


def _step(request: HttpRequest, step: provenance.Step, *, staff: bool) -> dict[str, Any]:
    job_id = step.image.job_id if step.image is not None else None
    admin = _admin_url(request, job_id) if job_id and staff else None  # the admin is staff's only
    return {"kind": step.kind, "image_id": step.image_id, "job_id": job_id, "admin_url": admin}


def _admin_url(request: HttpRequest, job_id: UUID) -> str:
    return absolute(request, reverse("admin:generation_generationjob_change", args=[job_id]))
