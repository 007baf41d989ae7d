"""Review and the Brand Library: submit images, read one's submissions, the reviewers' queue and
decisions, search the library and download from it (files with their content credentials)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from ..auth import is_reviewer
from ..forms import search_text
from ..http import thumbnail_response
from ..models import GeneratedImage, Submission
from ..review import selectors, services
from ..review.files import image_file_response
from ..review.services import ReviewRefused
from ..templatetags.image_tiles import id_url
from .common import InputSchema, absolute, user_of
from .errors import BODY, ERRORS, Error, FieldError
from .images import FILE_CONTENT, THUMBNAIL_CONTENT, ComplianceOut, StageOut, compliance_out

router = Router()

PAGE = 50
DECIDES: dict[int, Any] = {**BODY, 403: Error, 409: Error}  # not yours to do; not in a state that allows it


class ModelOut(Schema):
    key: str
    name: str
    license: str
    commercial_use: bool = Field(description="False: its outputs may not go into products, so never approved")
    license_notice: str


class LoraOut(Schema):
    name: str
    strength: float
    file: str = Field(description="The LoRA file the job used: which version")


class KitOut(Schema):
    slug: str
    name: str
    version: int


class LineageOut(Schema):
    """Everything that made the image, as its page shows it."""

    description: str = Field(description="The description as the designer typed it")
    prompt: str = Field(description="The prompt sent to the model")
    asset_type: str
    asset_type_name: str
    asset_type_version: int | None
    model: ModelOut
    loras: list[LoraOut]
    kit: KitOut | None = Field(description="The brand kit and its version; null for jobs made before kits")
    seed: int
    width: int
    height: int
    inputs: dict[str, Any] = Field(
        description="What it started from, where anything: sketch, references, edit, inpaint, variation"
    )
    finishing: list[StageOut]
    compliance: ComplianceOut


Status = Literal["pending", "approved", "changes_requested"]


class SubmissionOut(Schema):
    id: UUID
    image_id: UUID
    status: Status
    state: str = Field(description='In words: "Waiting for review", "Approved", "Retired from the Brand Library"...')
    note: str
    tags: list[str]
    submitted_by: str
    submitted_at: datetime
    reviewer: str | None
    comment: str
    decided_at: datetime | None
    retired_at: datetime | None
    can_be_approved: bool = Field(description="False with `why_not` where its model is not licensed for production")
    why_not: str | None
    thumbnail_url: str
    png_url: str
    page_url: str = Field(description="The submission's page: the image, its lineage and the decision")
    library_item_id: UUID | None = Field(description="Its library item (the same id) once approved and not retired")
    lineage: LineageOut


class SubmissionsOut(Schema):
    page: int
    pages: int
    count: int
    items: list[SubmissionOut]


class PageIn(InputSchema):
    page: int = Field(1, ge=1, le=100_000)


class SubmitIn(InputSchema):
    image_ids: list[UUID] = Field(min_length=1, max_length=services.MAX_IMAGES, description="Your images' ids")
    note: str = Field("", max_length=services.MAX_NOTE, description="What the reviewers should look at")
    tags: list[str] = Field([], max_length=services.MAX_TAGS, examples=[["onboarding", "q3 campaign"]])


class DecisionIn(InputSchema):
    # Optional to the schema so that an id the user may not see is a 404 before any body is judged.
    approve: bool | None = Field(None, description="true: into the Brand Library; false: request changes")
    comment: str = Field("", max_length=services.MAX_COMMENT, description="Required when requesting changes")


class ColourOut(Schema):
    hex: str
    share: float = Field(description="Share of the image's opaque pixels (0–1)")


class LibraryItemOut(Schema):
    id: UUID
    image_id: UUID
    asset_type: str
    asset_type_name: str
    description: str
    note: str
    tags: list[str]
    colours: list[ColourOut] = Field(description="Its dominant colours, most of the image first")
    approved_at: datetime
    approved_by: str | None
    submitted_by: str
    retired: bool = Field(description="Retired items are listed to staff only")
    retired_at: datetime | None
    thumbnail_url: str
    png_url: str
    webp_url: str
    svg_url: str | None = Field(description="Only for images traced to SVG (icons, logo illustrations)")
    lineage_url: str = Field(description="The item's page: the image with everything that made it")
    lineage: LineageOut


class LibraryOut(Schema):
    page: int
    pages: int
    count: int
    items: list[LibraryItemOut]


class LibraryFilters(InputSchema):
    page: int = Field(1, ge=1, le=100_000)
    asset_type: str | None = Field(None, max_length=100, description="An asset type's slug: icon")
    tag: str | None = Field(None, max_length=services.MAX_TAG_LENGTH)
    q: str | None = Field(None, max_length=200, description="Words in the description or the designer's note")
    colour: str | None = Field(
        None, max_length=40, description="A hex (#0f6cbd, 0f6cbd, #fff) or a name (blue): items with a colour near it"
    )
    since: date | None = Field(None, description="Approved on or after this day")
    until: date | None = Field(None, description="Approved on or before this day")


# --- shapes


def lineage_out(image: GeneratedImage) -> dict[str, Any]:
    job, params = image.job, image.job.params
    model = params.get("model") or {}
    inputs = {key: params[key] for key in ("sketch", "references", "edit", "inpaint", "variation") if params.get(key)}
    return {
        "description": job.prompt,
        "prompt": str(params.get("prompt", "")),
        "asset_type": job.preset.slug,
        "asset_type_name": job.preset.name,
        "asset_type_version": params.get("preset_version"),
        "model": {
            "key": job.model_key,
            "name": str(model.get("name") or job.model_key),
            "license": str(model.get("license") or ""),
            "commercial_use": bool(model.get("commercial_use", True)),
            "license_notice": str(model.get("license_notice") or ""),
        },
        "loras": [
            {
                "name": str(lora.get("name", "")),
                "strength": float(lora.get("strength") or 0),
                "file": str(lora.get("path", "")),
            }
            for lora in params.get("loras") or []
            if isinstance(lora, dict)
        ],
        "kit": params.get("kit") or None,
        "seed": image.seed,
        "width": image.width,
        "height": image.height,
        "inputs": inputs,
        "finishing": [
            {
                "stage": str(r.get("stage", "")),
                "seconds": float(r.get("seconds") or 0),
                "settings": r.get("settings") or {},
            }
            for r in image.finishing or []
            if isinstance(r, dict)
        ],
        "compliance": compliance_out(image),
    }


def submission_out(request: HttpRequest, submission: Submission) -> dict[str, Any]:
    image = submission.image
    why_not = image.license_restriction or None
    base = f"/api/v1/submissions/{submission.pk}"
    return {
        "id": submission.pk,
        "image_id": image.pk,
        "status": submission.status,
        "state": submission.state_label,
        "note": submission.note,
        "tags": [tag.name for tag in submission.tags.all()],
        "submitted_by": submission.submitted_by.get_username(),
        "submitted_at": submission.submitted_at,
        "reviewer": submission.reviewer.get_username() if submission.reviewer else None,
        "comment": submission.comment,
        "decided_at": submission.decided_at,
        "retired_at": submission.retired_at,
        "can_be_approved": why_not is None,
        "why_not": why_not,
        "thumbnail_url": absolute(request, base + "/thumbnail"),
        "png_url": absolute(request, base + "/file"),
        "page_url": absolute(request, id_url("submission", submission.pk)),
        "library_item_id": submission.pk if submission.in_library else None,
        "lineage": lineage_out(image),
    }


def item_out(request: HttpRequest, item: Submission) -> dict[str, Any]:
    image, job = item.image, item.image.job
    download = absolute(request, f"/api/v1/library/{item.pk}/download")
    return {
        "id": item.pk,
        "image_id": image.pk,
        "asset_type": job.preset.slug,
        "asset_type_name": job.preset.name,
        "description": job.prompt,
        "note": item.note,
        "tags": [tag.name for tag in item.tags.all()],
        "colours": [{"hex": colour.hex, "share": colour.share} for colour in item.colours.all()],
        "approved_at": item.decided_at,
        "approved_by": item.reviewer.get_username() if item.reviewer else None,
        "submitted_by": item.submitted_by.get_username(),
        "retired": item.retired_at is not None,
        "retired_at": item.retired_at,
        "thumbnail_url": absolute(request, f"/api/v1/library/{item.pk}/thumbnail"),
        "png_url": download + "?format=png",
        "webp_url": download + "?format=webp",
        "svg_url": download + "?format=svg" if image.svg else None,
        "lineage_url": absolute(request, id_url("library-item", item.pk)),
        "lineage": lineage_out(image),
    }


def _page(request: HttpRequest, rows: QuerySet[Submission], number: int, shape: Any) -> dict[str, Any]:
    page = Paginator(rows, PAGE).get_page(number)
    return {
        "page": page.number,
        "pages": page.paginator.num_pages,
        "count": page.paginator.count,
        "items": [shape(request, row) for row in page],
    }


def _refused(exc: ReviewRefused) -> FieldError:
    return FieldError(str(exc), exc.field, status=exc.status)


# --- submissions


@router.post("/submissions", response={201: list[SubmissionOut], **DECIDES}, tags=["review"])
def submission_create(request: HttpRequest, payload: SubmitIn) -> tuple[int, list[dict[str, Any]]]:
    """Submit your images for review, one submission each, sharing the note and tags. Nothing is
    made when one is not yours (404) or is already waiting for review or in the library (409)."""
    user = user_of(request)
    ids = list(dict.fromkeys(payload.image_ids))
    images = list(GeneratedImage.objects.filter(pk__in=ids, job__owner=user).select_related("job__preset"))
    if len(images) != len(ids):
        raise HttpError(404, "Not found (or not yours): some of these images.")
    try:
        made = services.submission_create(user=user, images=images, note=payload.note, tags=payload.tags)
    except ReviewRefused as exc:
        raise _refused(exc) from None
    rows = (
        selectors.submissions().filter(pk__in=[s.pk for s in made]).order_by("image__job__created_at", "image__index")
    )
    return 201, [submission_out(request, s) for s in rows]


@router.get("/submissions", response={200: SubmissionsOut, **ERRORS}, tags=["review"])
def submissions_mine(request: HttpRequest, paging: Query[PageIn]) -> dict[str, Any]:
    """Your submissions, newest first, 50 a page, with each decision."""
    return _page(request, selectors.my_submissions(user_of(request)), paging.page, submission_out)


@router.get("/submissions/{submission_id}", response={200: SubmissionOut, **ERRORS}, tags=["review"])
def submission_detail(request: HttpRequest, submission_id: UUID) -> dict[str, Any]:
    """One submission: yours, or anyone's for a reviewer."""
    return submission_out(request, selectors.submission_for(user_of(request), submission_id))


@router.get(
    "/submissions/{submission_id}/file",
    response={200: None, **ERRORS},
    url_name="submission_file",
    tags=["review"],
    openapi_extra={"responses": {"200": {"description": "The image file", "content": FILE_CONTENT}}},
)
def submission_file(request: HttpRequest, submission_id: UUID, format: Literal["png", "webp", "svg"] = "png") -> Any:
    submission = selectors.submission_for(user_of(request), submission_id)
    return image_file_response(submission.image, format, download=True)


@router.get(
    "/submissions/{submission_id}/thumbnail",
    response={200: None, **ERRORS},
    tags=["review"],
    openapi_extra={"responses": {"200": {"description": "The thumbnail", "content": THUMBNAIL_CONTENT}}},
)
def submission_thumbnail(request: HttpRequest, submission_id: UUID) -> Any:
    return thumbnail_response(selectors.submission_for(user_of(request), submission_id).image)


# --- reviews


@router.get("/reviews", response={200: SubmissionsOut, **DECIDES}, tags=["review"])
def review_queue(request: HttpRequest, paging: Query[PageIn]) -> dict[str, Any]:
    """Reviewers: everyone's submissions waiting for a decision but your own, oldest first."""
    user = user_of(request)
    if not is_reviewer(user):
        raise HttpError(403, "Only reviewers see the review queue: ask an admin to add you to the reviewers.")
    return _page(request, selectors.review_queue(user), paging.page, submission_out)


@router.post("/reviews/{submission_id}", response={200: SubmissionOut, **DECIDES}, tags=["review"])
def review_decide(request: HttpRequest, submission_id: UUID, payload: DecisionIn) -> dict[str, Any]:
    """Approve (into the Brand Library) or request changes, with a comment. 403: your own
    submission, or not a reviewer; 409: decided already, retired, or a model not licensed for
    production (never approved; `message` says why)."""
    user = user_of(request)
    submission = selectors.submission_for(user, submission_id)
    if payload.approve is None:
        raise FieldError("Say approve: true (into the Brand Library) or false (request changes).", "approve")
    try:
        services.submission_decide(
            reviewer=user, submission=submission, approve=payload.approve, comment=payload.comment
        )
    except ReviewRefused as exc:
        raise _refused(exc) from None
    return submission_out(request, selectors.submission_for(user, submission_id))


# --- the Brand Library


@router.get("/library", response={200: LibraryOut, **ERRORS}, tags=["brand library"])
def library_search(request: HttpRequest, filters: Query[LibraryFilters]) -> dict[str, Any]:
    """The Brand Library: approved images, newest approval first (by colour: nearest first), 50 a
    page, each filter narrowing it."""
    search = selectors.LibrarySearch(
        asset_type=search_text(filters.asset_type or ""),
        tag=search_text(filters.tag or ""),
        q=search_text(filters.q or ""),
        colour=filters.colour or "",
        since=filters.since,
        until=filters.until,
    )
    try:
        items = selectors.library_search(user_of(request), search)
    except selectors.BadSearch as exc:
        raise FieldError(str(exc), exc.field) from None
    return _page(request, items, filters.page, item_out)


@router.get("/library/{item_id}", response={200: LibraryItemOut, **ERRORS}, tags=["brand library"])
def library_item(request: HttpRequest, item_id: UUID) -> dict[str, Any]:
    return item_out(request, selectors.library_item_for(user_of(request), item_id))


@router.get(
    "/library/{item_id}/download",
    response={200: None, **ERRORS},
    url_name="library_download",
    tags=["brand library"],
    openapi_extra={"responses": {"200": {"description": "The image file", "content": FILE_CONTENT}}},
)
def library_download(request: HttpRequest, item_id: UUID, format: Literal["png", "webp", "svg"] = "png") -> Any:
    """The item as PNG (settings embedded), WebP or, where traced, SVG, with its content credentials."""
    return image_file_response(selectors.library_item_for(user_of(request), item_id).image, format, download=True)


@router.get(
    "/library/{item_id}/thumbnail",
    response={200: None, **ERRORS},
    tags=["brand library"],
    openapi_extra={"responses": {"200": {"description": "The thumbnail", "content": THUMBNAIL_CONTENT}}},
)
def library_thumbnail(request: HttpRequest, item_id: UUID) -> Any:
    return thumbnail_response(selectors.library_item_for(user_of(request), item_id).image)


@router.post("/library/{item_id}/retire", response={200: LibraryItemOut, **DECIDES}, tags=["brand library"])
def library_retire(request: HttpRequest, item_id: UUID) -> dict[str, Any]:
    """Staff: out of the Brand Library; it stays in the image's lineage, marked retired."""
    user = user_of(request)
    item = selectors.library_item_for(user, item_id)
    try:
        services.library_retire(user=user, item=item)
    except ReviewRefused as exc:
        raise _refused(exc) from None
    return item_out(request, selectors.library_item_for(user, item_id))
