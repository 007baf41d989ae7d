"""The REST API (/api/v1/) for the Figma plugin and the CLI: the brief's async job pattern.

django-ninja generates the OpenAPI schema (/api/v1/openapi.json) and the docs page
(/api/v1/docs) from these signatures. Only personal tokens authenticate (Authorization:
Bearer bst_...); cookies never do, so another origin cannot ride on a signed-in browser.
Every error is JSON {"message": ..., "field": ...}; another user's ids are 404.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Field, NinjaAPI, Query, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer

from . import services, views
from .auth import may_use_reference_models
from .forms import GenerateForm, search_text
from .models import AssetPreset, Favorite, GeneratedImage, GenerationJob, ImageModel, JobStatus
from .services import MAX_SEED
from .tokens import token_user


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = token_user(token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(
    title="Brand Studio API",
    version="1",
    urls_namespace="api-v1",
    auth=TokenAuth(),
    description="Generate on-brand images from scripts, the CLI and the Figma plugin. "
    "Authenticate with a personal token (Profile › API tokens) as `Authorization: Bearer <token>`.",
)


class Error(Schema):
    message: str
    field: str | None = None


# Every operation can answer these: unreadable body, no token, someone else's (or no such) id, bad input.
ERRORS: dict[int, Any] = {400: Error, 401: Error, 404: Error, 422: Error}
LIMITED: dict[int, Any] = {**ERRORS, 429: Error}


def _error(request: HttpRequest, status: int, message: str, field: str | None = None) -> HttpResponse:
    return api.create_response(request, {"message": message, "field": field}, status=status)


@api.exception_handler(NinjaValidationError)
def _validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    first = exc.errors[0] if exc.errors else {}
    location = [str(part) for part in first.get("loc", []) if part not in ("body", "query", "path", "payload")]
    return _error(request, 422, str(first.get("msg", "Invalid input.")), ".".join(location) or None)


@api.exception_handler(AuthenticationError)
def _unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, 401, "Send a valid personal API token: Authorization: Bearer <token>.")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _error(request, exc.status_code, str(exc))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "Not found (or not yours).")


class FieldError(Exception):
    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.field, self.status = field, status


@api.exception_handler(FieldError)
def _field_error(request: HttpRequest, exc: FieldError) -> HttpResponse:
    return _error(request, exc.status, str(exc), exc.field)


class RateLimited(Exception):
    def __init__(self, retry_after: int, message: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@api.exception_handler(RateLimited)
def _rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    response = _error(request, 429, str(exc))
    response["Retry-After"] = str(exc.retry_after)
    return response


# --- schemas


class JobIn(Schema):
    asset_type: str = Field(min_length=1, max_length=50, examples=["icon"])
    description: str = Field(min_length=1, max_length=1000, examples=["a clipboard with three checkmarks"])
    model: str | None = Field(None, max_length=100, description="Model key; default: the studio's default model")
    quality: Literal["draft", "standard", "high", "ultra"] = "standard"
    size: str | None = Field(None, pattern=r"^[0-9]{2,4}x[0-9]{2,4}$", description="Default: the asset type's")
    variations: int = Field(4, ge=1, le=8)
    seed: int | None = Field(None, ge=0, le=MAX_SEED - 8)


class ImageOut(Schema):
    id: UUID
    index: int
    seed: int
    width: int
    height: int
    url: str
    png_url: str
    webp_url: str
    page_url: str
    favorite: bool


class JobOut(Schema):
    id: UUID
    status: str
    asset_type: str
    description: str
    model: str
    quality: str
    width: int
    height: int
    progress: float
    step: int
    steps: int
    images_done: int
    images_total: int
    estimated_seconds: float | None
    error: str
    license_notice: str | None
    created_at: str
    images: list[ImageOut]
    zip_url: str


class MoreIn(Schema):
    count: int | None = Field(None, ge=1, le=8, description="Default: as many as the job had")


class VaryIn(Schema):
    strength: Literal["subtle", "strong"] = "subtle"


class AssetTypeOut(Schema):
    slug: str
    name: str
    description: str
    default_size: str
    sizes: list[str]
    steps: int
    guidance_scale: float


class ModelOut(Schema):
    key: str
    name: str
    family: str
    license: str
    commercial_use: bool
    license_notice: str
    max_side: int
    default: bool


class HistoryOut(Schema):
    page: int
    pages: int
    count: int
    jobs: list[JobOut]


class FavoriteIn(Schema):
    image_id: UUID


# --- helpers


def _user(request: HttpRequest) -> Any:
    return request.user


def _absolute(request: HttpRequest, path: str) -> str:
    return request.build_absolute_uri(path)


def _image_out(request: HttpRequest, image: GeneratedImage, starred: set[Any]) -> dict[str, Any]:
    file_url = reverse("api-v1:image_file", kwargs={"image_id": image.pk})
    return {
        "id": image.pk,
        "index": image.index,
        "seed": image.seed,
        "width": image.width,
        "height": image.height,
        "url": _absolute(request, file_url),
        "png_url": _absolute(request, file_url + "?format=png"),
        "webp_url": _absolute(request, file_url + "?format=webp"),
        "page_url": _absolute(request, image.get_absolute_url()),
        "favorite": image.pk in starred,
    }


def _job_out(request: HttpRequest, job: GenerationJob, starred: set[Any] | None = None) -> dict[str, Any]:
    images = list(job.images.all())
    if starred is None:
        starred = set(Favorite.objects.filter(user=_user(request), image__job=job).values_list("image_id", flat=True))
    model = job.params.get("model") or {}
    return {
        "id": job.pk,
        "status": job.status,
        "asset_type": job.preset.slug,
        "description": job.prompt,
        "model": job.model_key,
        "quality": job.quality,
        "width": job.params.get("width", 0),
        "height": job.params.get("height", 0),
        "progress": round(job.progress, 4),
        "step": job.progress_step,
        "steps": job.progress_steps,
        "images_done": job.images_done,
        "images_total": job.images_total,
        "estimated_seconds": _estimate(job),
        "error": job.error,
        "license_notice": None if model.get("commercial_use", True) else model.get("license_notice") or "",
        "created_at": job.created_at.isoformat(),
        "images": [_image_out(request, image, starred) for image in images],
        "zip_url": _absolute(request, reverse("api-v1:job_zip", kwargs={"job_id": job.pk})),
    }


def _estimate(job: GenerationJob) -> float | None:
    """Seconds left, from the last completed jobs of this model and asset type (None: no history)."""
    if job.is_ended:
        return 0.0
    recent = GenerationJob.objects.filter(
        model_key=job.model_key, preset=job.preset, status=JobStatus.COMPLETE, started_at__isnull=False
    ).order_by("-finished_at")[:5]
    per_image = [
        (done.finished_at - done.started_at).total_seconds() / max(1, done.images_total)
        for done in recent
        if done.finished_at and done.started_at
    ]
    if not per_image:
        return None
    total = sum(per_image) / len(per_image) * job.images_total
    return round(max(0.0, total * (1 - job.progress)), 1)


def _job(request: HttpRequest, job_id: UUID) -> GenerationJob:
    return get_object_or_404(GenerationJob.objects.select_related("preset"), pk=job_id, owner=_user(request))


def _image(request: HttpRequest, image_id: UUID) -> GeneratedImage:
    return get_object_or_404(
        GeneratedImage.objects.select_related("job__preset"), pk=image_id, job__owner=_user(request)
    )


def _check_rate(user: Any, jobs: int = 1) -> None:
    try:
        services.quota_check(user, jobs=jobs)
    except services.QuotaExceeded as exc:
        raise RateLimited(exc.retry_after, str(exc)) from None


# --- jobs


@api.post("/jobs", response={202: JobOut, **LIMITED}, tags=["jobs"])
def job_create(request: HttpRequest, payload: JobIn) -> tuple[int, dict[str, Any]]:
    """Submit a job: it is queued at once; poll GET /jobs/{id} for progress and images."""
    _check_rate(_user(request))
    data = {
        "preset": payload.asset_type,
        "prompt": payload.description,
        "model": payload.model or "",
        "quality": payload.quality,
        "variations": str(payload.variations),
        "size": payload.size or "",
        "seed": "" if payload.seed is None else str(payload.seed),
    }
    form = GenerateForm(data, user=_user(request))
    if not form.is_valid():
        field, messages = next(iter(form.errors.items()))
        names = {"preset": "asset_type", "prompt": "description", "__all__": None}
        raise FieldError(str(messages[0]), names.get(field, field))
    job = services.job_create(owner=_user(request), **form.job_fields())
    return 202, _job_out(request, job)


@api.get("/jobs/{job_id}", response={200: JobOut, **ERRORS}, tags=["jobs"])
def job_detail(request: HttpRequest, job_id: UUID) -> dict[str, Any]:
    """Status, progress (step of steps, images done of total), and the images made so far."""
    return _job_out(request, _job(request, job_id))


@api.get("/jobs/{job_id}/images", response={200: list[ImageOut], **ERRORS}, tags=["jobs"])
def job_images(request: HttpRequest, job_id: UUID) -> list[dict[str, Any]]:
    return _job_out(request, _job(request, job_id))["images"]


@api.post("/jobs/{job_id}/regenerate", response={202: JobOut, **LIMITED}, tags=["jobs"])
def job_regenerate(request: HttpRequest, job_id: UUID, payload: MoreIn) -> tuple[int, dict[str, Any]]:
    """Same settings, new seeds (`count` images; default: as many as the job had)."""
    job = _job(request, job_id)
    if payload.count is not None and not 1 <= payload.count <= settings.STUDIO_MAX_VARIATIONS:
        raise FieldError(f"count must be between 1 and {settings.STUDIO_MAX_VARIATIONS}.", "count")
    _check_rate(_user(request))
    return 202, _job_out(request, services.job_more(job=job, variations=payload.count))


@api.post("/jobs/{job_id}/cancel", response={200: JobOut, **ERRORS}, tags=["jobs"])
def job_cancel(request: HttpRequest, job_id: UUID) -> dict[str, Any]:
    job = _job(request, job_id)
    services.job_cancel(job=job)
    job.refresh_from_db()
    return _job_out(request, job)


@api.get("/jobs/{job_id}/zip", response={200: None, **ERRORS}, tags=["downloads"], url_name="job_zip")
def job_zip(request: HttpRequest, job_id: UUID) -> Any:
    """The job's images as one zip, streamed."""
    return views.job_zip_response(_job(request, job_id))


@api.post(
    "/images/{image_id}/more-like-this",
    response={202: JobOut, **LIMITED},
    tags=["jobs"],
)
def image_vary(request: HttpRequest, image_id: UUID, payload: VaryIn) -> tuple[int, dict[str, Any]]:
    """Variations of one image: img2img from it where the model can, nearby seeds where not."""
    image = _image(request, image_id)
    _check_rate(_user(request))
    return 202, _job_out(request, services.job_vary(image=image, strength=payload.strength))


@api.get(
    "/images/{image_id}/file",
    response={200: None, **ERRORS},
    tags=["downloads"],
    url_name="image_file",
)
def image_file(request: HttpRequest, image_id: UUID, format: Literal["png", "webp"] = "png") -> Any:
    """One image as PNG (with its settings embedded) or lossless WebP."""
    image = _image(request, image_id)
    if format == "webp":
        return views._webp(image, download=True)
    return views.FileResponse(image.file.open("rb"), content_type="image/png", filename=image.download_name)


# --- catalogue


@api.get("/asset-types", response={200: list[AssetTypeOut], **ERRORS}, tags=["catalogue"])
def asset_types(request: HttpRequest) -> list[dict[str, Any]]:
    return [
        {
            "slug": p.slug,
            "name": p.name,
            "description": p.description,
            "default_size": p.default_size,
            "sizes": p.size_choices,
            "steps": p.steps,
            "guidance_scale": p.guidance_scale,
        }
        for p in AssetPreset.objects.filter(enabled=True)
    ]


@api.get("/models", response={200: list[ModelOut], **ERRORS}, tags=["catalogue"])
def models_list(request: HttpRequest) -> list[dict[str, Any]]:
    reference = may_use_reference_models(_user(request))
    return [
        {
            "key": m.key,
            "name": m.name,
            "family": m.family,
            "license": m.license_name,
            "commercial_use": m.commercial_use,
            "license_notice": m.license_notice,
            "max_side": m.max_side,
            "default": m.key == settings.STUDIO_DEFAULT_MODEL,
        }
        for m in ImageModel.objects.filter(enabled=True)
        if m.commercial_use or reference
    ]


# --- history and favorites


class HistoryFilters(Schema):
    page: int = Field(1, ge=1, le=100_000)
    asset_type: str | None = None
    model: str | None = None
    status: Literal["queued", "processing", "complete", "failed", "cancelled"] | None = None
    q: str | None = None
    starred: bool = False


@api.get("/history", response={200: HistoryOut, **ERRORS}, tags=["history"])
def history(request: HttpRequest, filters: Query[HistoryFilters]) -> dict[str, Any]:
    """The user's jobs, newest first, 20 a page."""
    user = _user(request)
    jobs = GenerationJob.objects.filter(owner=user).select_related("preset").prefetch_related("images")
    if filters.asset_type:
        jobs = jobs.filter(preset__slug=search_text(filters.asset_type))
    if filters.model:
        jobs = jobs.filter(model_key=search_text(filters.model))
    if filters.status:
        jobs = jobs.filter(status=filters.status)
    if filters.q:
        jobs = jobs.filter(prompt__icontains=search_text(filters.q)[:200])
    if filters.starred:
        jobs = jobs.filter(Q(images__favorites__user=user)).distinct()
    page = Paginator(jobs, 20).get_page(max(1, filters.page))
    starred = set(
        Favorite.objects.filter(user=user, image__job__in=page.object_list).values_list("image_id", flat=True)
    )
    return {
        "page": page.number,
        "pages": page.paginator.num_pages,
        "count": page.paginator.count,
        "jobs": [_job_out(request, job, starred) for job in page],
    }


@api.get("/favorites", response={200: list[ImageOut], **ERRORS}, tags=["favorites"])
def favorites(request: HttpRequest) -> list[dict[str, Any]]:
    stars = Favorite.objects.filter(user=_user(request)).select_related("image__job__preset")[:500]
    starred = {star.image_id for star in stars}
    return [_image_out(request, star.image, starred) for star in stars]


@api.post("/favorites", response={201: ImageOut, 200: ImageOut, **ERRORS}, tags=["favorites"])
def favorite_add(request: HttpRequest, payload: FavoriteIn) -> tuple[int, dict[str, Any]]:
    image = _image(request, payload.image_id)
    _, created = Favorite.objects.get_or_create(user=_user(request), image=image)
    return (201 if created else 200), _image_out(request, image, {image.pk})


@api.delete("/favorites/{image_id}", response={204: None, **ERRORS}, tags=["favorites"])
def favorite_remove(request: HttpRequest, image_id: UUID) -> tuple[int, None]:
    image = _image(request, image_id)
    Favorite.objects.filter(user=_user(request), image=image).delete()
    return 204, None
