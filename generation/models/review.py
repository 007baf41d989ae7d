"""Review and approval, and the Brand Library its approvals make (generation/review/).

One `Submission` per image put forward: a batch submit makes several, sharing their note and
tags. A reviewer approves it or asks for changes, once; a resubmission is a new row. An approved
submission is a library item: its id is the item's id, its colours are recorded at approval
(`LibraryColour`, so a search by colour reads no file), and staff may retire it (it stays, marked,
in the image's lineage). Every change is on the audit trail (`history`).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from .jobs import GeneratedImage


class ReviewStatus(models.TextChoices):
    PENDING = "pending", "Waiting for review"
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"


class Tag(models.Model):
    """A word a designer files a submission under ("onboarding", "q3 campaign"): lower case."""

    name = models.CharField(max_length=40, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Submission(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    image = models.ForeignKey(GeneratedImage, on_delete=models.CASCADE, related_name="submissions")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions")
    note = models.TextField(blank=True, help_text="What the designer asks the reviewers to look at")
    tags = models.ManyToManyField(Tag, blank=True, related_name="submissions")
    submitted_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=20, choices=ReviewStatus.choices, default=ReviewStatus.PENDING)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reviews"
    )
    comment = models.TextField(blank=True, help_text="The reviewer's words with the decision")
    decided_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True, help_text="Out of the Brand Library since")
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["-submitted_at"]
        constraints = [
            # Under the services' checks, for two submits or two approvals of one image at once.
            models.UniqueConstraint(
                fields=["image"], condition=Q(status="pending"), name="one_pending_submission_per_image"
            ),
            models.UniqueConstraint(
                fields=["image"],
                condition=Q(status="approved", retired_at__isnull=True),
                name="one_library_item_per_image",
            ),
        ]
        indexes = [models.Index(fields=["status", "-decided_at"], name="submission_status_decided")]

    def __str__(self) -> str:
        return f"{self.image.job.preset.name} · {self.image.job.prompt[:40]} (seed {self.image.seed})"

    def get_absolute_url(self) -> str:
        return reverse("submission", args=[self.id])

    @property
    def in_library(self) -> bool:
        return self.status == ReviewStatus.APPROVED and self.retired_at is None

    @property
    def state_label(self) -> str:
        """What the designer reads on the image: "Approved", "Retired from the Brand Library"..."""
        if self.status == ReviewStatus.APPROVED and self.retired_at is not None:
            return "Retired from the Brand Library"
        return self.get_status_display()


class LibraryColour(models.Model):
    """One of a library item's dominant colours, with its CIELAB coordinates: a search by colour
    is a distance in the database, with no image read."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="colours")
    hex = models.CharField(max_length=7)
    share = models.FloatField(help_text="Share of the image's opaque pixels (0–1)")
    lab_l = models.FloatField()
    lab_a = models.FloatField()
    lab_b = models.FloatField()

    class Meta:
        ordering = ["submission", "-share"]

    def __str__(self) -> str:
        return f"{self.hex} {self.share:.0%}"
