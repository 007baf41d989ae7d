"""What a designer keeps: history (jobs, newest first, filtered) and favorites (starred images)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from ..forms import search_text
from ..jobs.selectors import jobs_sorted, jobs_with_compliance
from ..models import Favorite, GenerationJob
from .common import InputSchema, own_image, user_of
from .errors import BODY, ERRORS, FieldError
from .images import ImageOut, image_out
from .jobs import JobOut, job_out

router = Router()


class HistoryOut(Schema):
    page: int
    pages: int
    count: int
    jobs: list[JobOut]


class HistoryFilters(InputSchema):
    page: int = Field(1, ge=1, le=100_000)
    asset_type: str | None = None
    model: str | None = None
    status: Literal["queued", "processing", "complete", "failed", "cancelled"] | None = None
    q: str | None = None
    starred: bool = False
    min_compliance: float | None = Field(
        None, ge=0, le=1, description="Only jobs with an image at least this on-brand (0–1, its finished score)"
    )
    max_compliance: float | None = Field(None, ge=0, le=1, description="Only jobs with an image at most this on-brand")
    sort: Literal["created", "-created", "compliance", "-compliance"] = Field(
        "-created", description="A job's compliance is its best image's; jobs without a score come last"
    )


class FavoriteIn(InputSchema):
    image_id: UUID


@router.get("/history", response={200: HistoryOut, **ERRORS}, tags=["history"])
def history(request: HttpRequest, filters: Query[HistoryFilters]) -> dict[str, Any]:
    """The user's jobs, newest first (or as `sort` says), 20 a page."""
    user = user_of(request)
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
    low, high = filters.min_compliance, filters.max_compliance
    if low is not None and high is not None and low > high:
        raise FieldError(f"min_compliance ({low}) is above max_compliance ({high}).", "min_compliance")
    if low is not None or high is not None:
        jobs = jobs_with_compliance(jobs, minimum=low, maximum=high)
    jobs = jobs_sorted(jobs, filters.sort)
    page = Paginator(jobs, 20).get_page(max(1, filters.page))
    starred = set(
        Favorite.objects.filter(user=user, image__job__in=page.object_list).values_list("image_id", flat=True)
    )
    return {
        "page": page.number,
        "pages": page.paginator.num_pages,
        "count": page.paginator.count,
        "jobs": [job_out(request, job, starred) for job in page],
    }


@router.get("/favorites", response={200: list[ImageOut], **ERRORS}, tags=["favorites"])
def favorites(request: HttpRequest) -> list[dict[str, Any]]:
    stars = Favorite.objects.filter(user=user_of(request)).select_related("image__job__preset")[:500]
    starred = {star.image_id for star in stars}
    return [image_out(request, star.image, starred) for star in stars]


@router.post("/favorites", response={201: ImageOut, 200: ImageOut, **BODY}, tags=["favorites"])
def favorite_add(request: HttpRequest, payload: FavoriteIn) -> tuple[int, dict[str, Any]]:
    image = own_image(request, payload.image_id)
    _, created = Favorite.objects.get_or_create(user=user_of(request), image=image)
    return (201 if created else 200), image_out(request, image, {image.pk})


@router.delete("/favorites/{image_id}", response={204: None, **ERRORS}, tags=["favorites"])
def favorite_remove(request: HttpRequest, image_id: UUID) -> tuple[int, None]:
    image = own_image(request, image_id)
    Favorite.objects.filter(user=user_of(request), image=image).delete()
    return 204, None
