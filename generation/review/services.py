"""Review's writes: submit, decide, retire. Each runs under a transaction, refuses with a
`ReviewRefused` that says why (and changes nothing), and a decision tells the designer from a
task sent after commit (notify.py, on the maintenance queue), so no request waits on email or a
webhook."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format
from simple_history.utils import bulk_create_with_history

from ..auth import is_reviewer
from ..jobs import lifecycle
from ..models import GeneratedImage, LibraryColour, ReviewStatus, Submission, Tag
from .colours import dominant_colours

log = logging.getLogger(__name__)

NOTIFY = "generation.tasks.notify_review_decision"
NOTIFY_SUBMITTED = "generation.tasks.notify_review_submitted"
MAX_IMAGES = 100  # per submit
MAX_TAGS = 10
MAX_TAG_LENGTH = 40
MAX_NOTE = 2000
MAX_COMMENT = 2000


class ReviewRefused(Exception):
    """What the page or the API answers, with `status`: 403 not this user's to do, 404 not theirs
    to see, 409 not in a state that allows it, 422 bad input (`field` names it)."""

    def __init__(self, message: str, *, status: int = 409, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.field = status, field


def normal_tags(raw: str | Iterable[str]) -> list[str]:
    """Tags as they are kept: lower case, single spaces, no repeats, in the order given; a string
    is split at commas ("Onboarding, Q3 campaign" -> ["onboarding", "q3 campaign"])."""
    values = raw.split(",") if isinstance(raw, str) else list(raw)
    tags: list[str] = []
    for value in values:
        tag = " ".join(str(value).split()).lower()
        if not tag or tag in tags:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise ReviewRefused(
                f"Keep each tag under {MAX_TAG_LENGTH} characters: “{tag[:50]}”.", status=422, field="tags"
            )
        tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise ReviewRefused(f"At most {MAX_TAGS} tags per submission; these are {len(tags)}.", status=422, field="tags")
    return tags


def submission_create(
    *, user: Any, images: Sequence[GeneratedImage], note: str, tags: Iterable[str]
) -> list[Submission]:
    """One submission per image, all with the note and tags. Refused whole (nothing made) when an
    image is not the user's (404), or one is already waiting for review or in the library (409)."""
    if not images:
        raise ReviewRefused("Select the images to submit first.", status=422, field="image_ids")
    if len(images) > MAX_IMAGES:
        raise ReviewRefused(f"Submit at most {MAX_IMAGES} images at once.", status=422, field="image_ids")
    if any(image.job.owner_id != user.pk for image in images):
        raise ReviewRefused("Not found (or not yours).", status=404, field="image_ids")
    if len(note) > MAX_NOTE:
        raise ReviewRefused(f"Keep the note under {MAX_NOTE} characters.", status=422, field="note")
    tag_names = normal_tags(tags)
    try:
        with transaction.atomic():
            _refuse_taken(images)
            # With the audit trail's first record of each (bulk_create alone skips save()).
            rows = [Submission(image=image, submitted_by=user, note=note.strip()) for image in images]
            made = bulk_create_with_history(rows, Submission, default_user=user)
            kept = [Tag.objects.get_or_create(name=name)[0] for name in tag_names]
            links = [Submission.tags.through(submission_id=s.pk, tag_id=t.pk) for s in made for t in kept]
            Submission.tags.through.objects.bulk_create(links)
            ids = [str(s.pk) for s in made]
            transaction.on_commit(lambda: enqueue_notice(NOTIFY_SUBMITTED, ids))
    except IntegrityError:  # the same image submitted twice at once: the other one got there first
        raise ReviewRefused("One of these images was submitted just now: reload My submissions.") from None
    return made


def _refuse_taken(images: Sequence[GeneratedImage]) -> None:
    taken = (
        Submission.objects.filter(image__in=images)
        .filter(Q(status=ReviewStatus.PENDING) | Q(status=ReviewStatus.APPROVED, retired_at__isnull=True))
        .select_related("image")
        .first()
    )
    if taken is not None:
        where = "is already waiting for review" if taken.status == ReviewStatus.PENDING else "is in the Brand Library"
        raise ReviewRefused(f"Seed {taken.image.seed} of “{taken.image.job.prompt[:60]}” {where}.")


def submission_decide(*, reviewer: Any, submission: Submission, approve: bool, comment: str) -> Submission:
    """Approve (into the Brand Library, its colours recorded) or ask for changes, with a comment
    (required for changes). Refused: not a reviewer or the reviewer's own submission (403), decided
    already or retired (409), an image whose model is not licensed for production (409)."""
    comment = comment.strip()
    if not is_reviewer(reviewer):
        raise ReviewRefused("Only reviewers decide submissions: ask an admin to add you to the reviewers.", status=403)
    if submission.submitted_by_id == reviewer.pk:
        raise ReviewRefused("Nobody reviews their own submission: another reviewer decides this one.", status=403)
    if not approve and not comment:
        raise ReviewRefused("Say what should change: the designer reads it.", status=422, field="comment")
    if len(comment) > MAX_COMMENT:
        raise ReviewRefused(f"Keep the comment under {MAX_COMMENT} characters.", status=422, field="comment")
    check_decidable(submission, approve=approve)
    swatches = dominant_colours(submission.image) if approve else []  # read before the row is locked
    with transaction.atomic():
        locked = Submission.objects.select_for_update().select_related("image__job").get(pk=submission.pk)
        check_decidable(locked, approve=approve)
        locked.status = ReviewStatus.APPROVED if approve else ReviewStatus.CHANGES_REQUESTED
        locked.reviewer, locked.comment, locked.decided_at = reviewer, comment, timezone.now()
        locked._history_user = reviewer  # type: ignore[attr-defined]  # the API's requests too
        try:
            with transaction.atomic():
                locked.save(update_fields=["status", "reviewer", "comment", "decided_at"])
        except IntegrityError:  # another submission of this image was approved meanwhile
            raise ReviewRefused("This image is in the Brand Library already, from another submission.") from None
        LibraryColour.objects.bulk_create(
            LibraryColour(submission=locked, hex=s.hex, share=s.share, lab_l=s.lab[0], lab_a=s.lab[1], lab_b=s.lab[2])
            for s in swatches
        )
        transaction.on_commit(lambda: enqueue_notice(NOTIFY, str(locked.pk)))
    return locked


def check_decidable(submission: Submission, *, approve: bool) -> None:
    """409 with the reason when the submission takes no decision (or no approval) now; the
    review page asks this too, to say why before anyone clicks."""
    if submission.retired_at is not None:
        raise ReviewRefused(f"This item was retired from the Brand Library on {_day(submission.retired_at)}.")
    if submission.status != ReviewStatus.PENDING:
        who = submission.reviewer.get_username() if submission.reviewer else "a reviewer"
        state = submission.get_status_display().lower()
        when = _day(submission.decided_at) if submission.decided_at else "earlier"
        raise ReviewRefused(f"This submission was decided already: {state} by {who} on {when}.")
    if approve and (restriction := submission.image.license_restriction):
        raise ReviewRefused(f"It cannot be approved: its model is not licensed for production. {restriction}")


def library_retire(*, user: Any, item: Submission) -> Submission:
    """Staff take an item out of the Brand Library; it stays in the image's lineage, marked retired."""
    if not getattr(user, "is_staff", False):
        raise ReviewRefused("Only staff retire library items.", status=403)
    with transaction.atomic():
        locked = Submission.objects.select_for_update().get(pk=item.pk)
        if locked.status != ReviewStatus.APPROVED:
            raise ReviewRefused("Only an approved item of the Brand Library can be retired.")
        if locked.retired_at is not None:
            raise ReviewRefused(f"This item was retired already, on {_day(locked.retired_at)}.")
        locked.retired_at, locked.retired_by = timezone.now(), user
        locked._history_user = user  # type: ignore[attr-defined]
        locked.save(update_fields=["retired_at", "retired_by"])
    return locked


def enqueue_notice(task: str, argument: str | list[str]) -> None:
    """A submission's or a decision's email and webhook, on the maintenance queue. A broker that
    does not answer loses the notification only: what was submitted or decided stands, and the
    queue and My submissions show it."""
    try:
        lifecycle.send_task(task, argument)
    except Exception:
        log.exception("Could not enqueue the notification %s for %s", task.rsplit(".", 1)[-1], argument)


def _day(moment: Any) -> str:
    return date_format(timezone.localtime(moment), "j F Y")
