"""Telling people of review work: the reviewers of a new submission, the designer of a decision.
An email through Django's email backend (to those with an address) and, where
STUDIO_REVIEW_WEBHOOK_URL is set, a message to a Teams or Slack channel.

Sent by tasks on the maintenance queue (tasks.notify_review_submitted, notify_review_decision),
never in the request. A failure is logged and changes nothing: the queue and My submissions
show the same whatever happens here.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail, send_mass_mail
from django.db.models import Q
from django.urls import reverse

from ..auth import REVIEWER_GROUP
from ..models import ReviewStatus, Submission

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = 5  # seconds; the task is on the maintenance queue, behind the reaper


def notify_decision(submission_id: str | UUID) -> None:
    submission = (
        Submission.objects.select_related("image__job__preset", "submitted_by", "reviewer")
        .filter(pk=submission_id)
        .first()
    )
    if submission is None or submission.status == ReviewStatus.PENDING:
        return
    text = decision_text(submission)
    email_designer(submission, text)
    if settings.STUDIO_REVIEW_WEBHOOK_URL:
        post_webhook(settings.STUDIO_REVIEW_WEBHOOK_URL, text)


def notify_submitted(submission_ids: Sequence[str | UUID]) -> None:
    """One message for one submit, however many images: to every reviewer but the designer, and
    the channel. Submissions decided before this runs are left out; none left, nothing sent."""
    submissions = list(
        Submission.objects.select_related("image__job__preset", "submitted_by")
        .filter(pk__in=submission_ids, status=ReviewStatus.PENDING)
        .order_by("submitted_at")
    )
    if not submissions:
        return
    text = submitted_text(submissions)
    email_reviewers(submissions[0].submitted_by, text, len(submissions))
    if settings.STUDIO_REVIEW_WEBHOOK_URL:
        post_webhook(settings.STUDIO_REVIEW_WEBHOOK_URL, text)


SHOWN = 5  # images named in one message; the rest are counted


def submitted_text(submissions: Sequence[Submission]) -> str:
    first = submissions[0]
    count = len(submissions)
    lines = [f"{first.submitted_by.get_username()} submitted {count} image{'s' if count > 1 else ''} for review:"]
    lines += [f"- {named(submission)}" for submission in submissions[:SHOWN]]
    if count > SHOWN:
        lines.append(f"- and {count - SHOWN} more")
    if first.note:
        lines.append(f"Note: “{first.note[:300]}”")
    lines.append(link(reverse("review-queue")))
    return "\n".join(lines)


def email_reviewers(designer: Any, text: str, count: int) -> None:
    """A message each (no reviewer sees the others' addresses); the designer is never told of
    their own submission, staff count as reviewers as they do in the queue."""
    reviewers = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_staff=True) | Q(groups__name=REVIEWER_GROUP))
        .exclude(pk=designer.pk)
        .exclude(email="")
        .distinct()
        .values_list("email", flat=True)
    )
    subject = f"For review: {count} image{'s' if count > 1 else ''} from {designer.get_username()}"
    messages = [(subject, text, None, [address]) for address in reviewers]
    if not messages:
        return
    try:
        send_mass_mail(messages)
    except Exception:
        log.exception("New submissions from %s: the email to the reviewers could not be sent", designer.pk)


def decision_text(submission: Submission) -> str:
    what = named(submission)
    who = submission.reviewer.get_username() if submission.reviewer else "a reviewer"
    verdict = "is in the Brand Library" if submission.status == ReviewStatus.APPROVED else "needs changes"
    said = f": “{submission.comment}”" if submission.comment else "."
    line = f"{submission.submitted_by.get_username()}'s {what} {verdict}, says {who}{said}"
    return f"{line}\n{link(reverse('submission', args=[submission.pk]))}"


def named(submission: Submission) -> str:
    """The image as a message names it: “a rocket over the city” (Icon, seed 42)."""
    job = submission.image.job
    return f"“{job.prompt[:80]}” ({job.preset.name}, seed {submission.image.seed})"


def link(path: str) -> str:
    """An absolute link where the studio's address is known (STUDIO_PUBLIC_URL), else the path."""
    return settings.STUDIO_PUBLIC_URL + path


def email_designer(submission: Submission, text: str) -> None:
    address = submission.submitted_by.email
    if not address:
        return
    subject = "Approved for the Brand Library" if submission.status == ReviewStatus.APPROVED else "Changes requested"
    try:
        send_mail(f"{subject}: {submission.image.job.prompt[:60]}", text, None, [address])
    except Exception:
        log.exception("Review decision %s: the email to its designer could not be sent", submission.pk)


def post_webhook(url: str, text: str) -> bool:
    """POST {"text": ...}: what Slack's incoming webhooks and Teams' connectors both read.
    False (and a log line) when the channel does not take it."""
    if not url.startswith(("https://", "http://")):
        log.warning("STUDIO_REVIEW_WEBHOOK_URL is not an http(s) URL; no message sent")
        return False
    body = json.dumps({"text": text}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:  # noqa: S310 (staff set the URL)
            status: Any = response.status
    except Exception as exc:
        log.warning("The review webhook did not take the message: %s", exc)
        return False
    return 200 <= int(status) < 300
