"""Review's reads: who sees which submission, the reviewers' queue, a designer's submissions,
and the Brand Library's search. A submission is its submitter's and the reviewers'; anyone else
gets a 404 for it. The library (approved, not retired) is every signed-in user's; staff see the
retired items too, marked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from django.db.models import ExpressionWrapper, F, FloatField, OuterRef, Q, QuerySet, Subquery
from django.shortcuts import get_object_or_404
from django.utils import timezone

from ..auth import is_reviewer
from ..models import GeneratedImage, LibraryColour, ReviewStatus, Submission
from .colours import LEAST_SHARE, parse_colour

# What listing a submission reads besides its row: the image, its job and asset type, the people.
RELATED = ("image__job__preset", "submitted_by", "reviewer", "retired_by")


def submissions() -> QuerySet[Submission]:
    return Submission.objects.select_related(*RELATED).prefetch_related("tags", "colours")


def visible_submissions(user: Any) -> QuerySet[Submission]:
    every = submissions()
    return every if is_reviewer(user) else every.filter(submitted_by=user)


def submission_for(user: Any, pk: UUID) -> Submission:
    """A submission its submitter or a reviewer asked for; a 404 for anyone else."""
    return get_object_or_404(visible_submissions(user), pk=pk)


def my_submissions(user: Any) -> QuerySet[Submission]:
    return submissions().filter(submitted_by=user).order_by("-submitted_at")


def review_queue(reviewer: Any) -> QuerySet[Submission]:
    """What a reviewer may decide, oldest first: everyone's waiting submissions but their own."""
    return submissions().filter(status=ReviewStatus.PENDING).exclude(submitted_by=reviewer).order_by("submitted_at")


def library_items(user: Any) -> QuerySet[Submission]:
    items = submissions().filter(status=ReviewStatus.APPROVED)
    return items if getattr(user, "is_staff", False) else items.filter(retired_at__isnull=True)


def library_item_for(user: Any, pk: UUID) -> Submission:
    return get_object_or_404(library_items(user), pk=pk)


def image_submissions(image: GeneratedImage) -> list[Submission]:
    """An image's review record for its page, newest first."""
    return list(Submission.objects.filter(image=image).select_related("reviewer").order_by("-submitted_at"))


@dataclass
class LibrarySearch:
    """A library search, as the page's filters and the API's query parameters give it."""

    asset_type: str = ""
    tag: str = ""
    q: str = ""
    colour: str = ""
    since: date | None = None
    until: date | None = None


class BadSearch(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def library_search(user: Any, search: LibrarySearch) -> QuerySet[Submission]:
    """The items matching every filter given, newest approval first; by colour, nearest first.
    BadSearch names the filter it cannot read (a colour that is none, a date range backwards)."""
    items = library_items(user)
    if search.asset_type:
        items = items.filter(image__job__preset__slug=search.asset_type)
    if search.tag:
        items = items.filter(tags__name=" ".join(search.tag.split()).lower())
    if search.q:
        text = search.q[:200]
        items = items.filter(Q(image__job__prompt__icontains=text) | Q(note__icontains=text))
    if search.since and search.until and search.since > search.until:
        raise BadSearch(f"The range starts ({search.since}) after it ends ({search.until}).", "since")
    if search.since:
        items = items.filter(decided_at__gte=_day_start(search.since))
    if search.until:
        items = items.filter(decided_at__lt=_day_start(search.until) + timedelta(days=1))
    if search.colour:
        return _nearest_colour(items, search.colour)
    return items.order_by("-decided_at")


def _nearest_colour(items: QuerySet[Submission], text: str) -> QuerySet[Submission]:
    try:
        wanted = parse_colour(text)
    except ValueError as exc:
        raise BadSearch(str(exc), "colour") from None
    lightness, a, b = wanted.lab
    off_l, off_a, off_b = F("lab_l") - lightness, F("lab_a") - a, F("lab_b") - b
    distance = ExpressionWrapper(off_l * off_l + off_a * off_a + off_b * off_b, output_field=FloatField())
    colours = LibraryColour.objects.filter(submission=OuterRef("pk"), share__gte=LEAST_SHARE)
    nearest = colours.annotate(distance=distance).order_by("distance").values("distance")[:1]
    items = items.annotate(nearest=Subquery(nearest, output_field=FloatField()))
    return items.filter(nearest__lte=wanted.radius**2).order_by("nearest", "-decided_at")


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))
