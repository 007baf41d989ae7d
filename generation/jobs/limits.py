"""Fair use: the per-user limits every submission is checked against, under the user's row lock."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from ..models import GenerationJob, JobStatus


class QuotaExceeded(Exception):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@contextmanager
def within_limits(user_id: int, *, jobs: int = 1) -> Iterator[None]:
    """Check the per-user limits and create the jobs (inside the block) as one step.

    Checked and created apart, simultaneous submissions all pass the check before any job
    exists, and more get through than the limit allows. The lock on the user's row, the one
    `dispatch` takes too, holds the next submission back until this one's jobs are committed;
    SQLite has no row locks, but its IMMEDIATE transactions (settings.py) take the database's
    write lock at BEGIN, which serialises submissions the same way.
    """
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        quota_check(user, jobs=jobs)
        token = _holding_lock.set(user_id)
        try:
            yield
        finally:
            _holding_lock.reset(token)


# The user whose row lock this thread's transaction holds (within_limits), so dispatch skips taking it again.
_holding_lock: contextvars.ContextVar[int | None] = contextvars.ContextVar("holding_lock", default=None)


def quota_check(user: User, *, jobs: int = 1) -> None:
    """Fair use: raise QuotaExceeded (with when to try again) past the per-user limits."""
    since = timezone.now() - timedelta(seconds=60)
    # One query for both limits: a submission runs this under the user's lock, so it should be quick.
    counts = GenerationJob.objects.filter(owner=user).aggregate(
        in_flight=Count("pk", filter=Q(status__in=[JobStatus.QUEUED, JobStatus.PROCESSING])),
        single=Count("pk", filter=Q(created_at__gte=since, group__isnull=True)),
        groups=Count("group", filter=Q(created_at__gte=since), distinct=True),
    )
    in_flight = counts["in_flight"]
    if in_flight + jobs > settings.STUDIO_MAX_JOBS_IN_FLIGHT:
        raise QuotaExceeded(
            f"You have {in_flight} jobs waiting or running; the limit is {settings.STUDIO_MAX_JOBS_IN_FLIGHT}. "
            "New ones can start as those finish.",
            retry_after=30,
        )
    submissions = counts["single"] + counts["groups"]
    if submissions >= settings.STUDIO_SUBMISSIONS_PER_MINUTE:
        recent = GenerationJob.objects.filter(owner=user, created_at__gte=since)
        oldest = recent.order_by("created_at").values_list("created_at", flat=True).first() or timezone.now()
        wait = max(1, int(60 - (timezone.now() - oldest).total_seconds()) + 1)
        raise QuotaExceeded(f"That is {submissions} submissions in a minute; try again in {wait} s.", retry_after=wait)


def holds_lock(user_id: int) -> bool:
    """Whether this thread's transaction holds `user_id`'s row lock already (inside within_limits)."""
    return _holding_lock.get() == user_id
