"""Brand training: curated sets of captioned images and the LoRA runs trained on them."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from ..engine.families import family_choices
from .catalogue import AssetPreset
from .jobs import ENDED_STATUSES, JobStatus


def training_upload_to(image: "TrainingImage", filename: str) -> str:
    return f"training/sets/{image.training_set_id}/{filename}"


class TrainingSet(models.Model):
    """Curated, captioned images for one asset type and model family, from which LoRAs are trained."""

    name = models.CharField(max_length=100)
    preset = models.ForeignKey(AssetPreset, on_delete=models.PROTECT, related_name="training_sets")
    family = models.CharField(max_length=30, choices=family_choices)
    trigger_word = models.CharField(
        max_length=50, blank=True, help_text="A rare word the LoRA learns to tie to the brand look, e.g. bsicon"
    )
    # The staff's words for the captioner: {preferred term: [words it replaces]}, e.g.
    # {"flat icon": ["flat", "minimal"]} (generation/training/captions/terms.py).
    terminology = models.JSONField(default=dict, blank=True)
    # The captioner's latest pass over the set: who asked, how far it got, its token (a later start
    # or a stop replaces it, and the worker holding the old one stops).
    captioning = models.JSONField(default=dict, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("training-set", args=[self.pk])


class CaptionSource(models.TextChoices):
    HUMAN = "human", "A person"
    CAPTIONER = "captioner", "The captioner"


class TrainingImage(models.Model):
    training_set = models.ForeignKey(TrainingSet, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to=training_upload_to, max_length=300)
    original_name = models.CharField(max_length=200)
    caption = models.TextField(blank=True)
    # Who wrote the caption, and whether a person read it since: a captioner's caption is marked
    # until a person edits or approves it (the set's report counts those still marked).
    caption_source = models.CharField(max_length=10, choices=CaptionSource.choices, default=CaptionSource.HUMAN)
    caption_reviewed = models.BooleanField(default=True)
    caption_error = models.CharField(max_length=500, blank=True)  # why the captioner wrote none
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # Perceptual hashes (64-bit dHash, hex) of the image and of crops of it, to find duplicates.
    hashes = models.JSONField(default=dict)
    # [[pk, why], ...]: the set's earlier images this one nearly duplicates, found once at upload
    # (generation/training/data.py) so that the set's report never compares every pair again.
    similar = models.JSONField(default=list, blank=True, editable=False)
    excluded = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.original_name

    @property
    def needs_review(self) -> bool:
        """A caption the captioner wrote that no person has edited or approved yet."""
        return self.caption_source == CaptionSource.CAPTIONER and not self.caption_reviewed and bool(self.caption)


class TrainingRun(models.Model):
    """One LoRA training of a set on a base model: a Celery job on the `training` queue."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    training_set = models.ForeignKey(TrainingSet, on_delete=models.PROTECT, related_name="runs")
    model_key = models.CharField(max_length=100)
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    error = models.TextField(blank=True)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    losses = models.JSONField(default=list, blank=True)  # [[step, loss], ...]
    samples = models.JSONField(default=list, blank=True)  # [{"step": n, "files": [storage names]}]
    checkpoint = models.CharField(max_length=300, blank=True)  # storage name of the last checkpoint
    content_hash = models.CharField(max_length=64, blank=True)  # of the images and captions trained on
    notes = models.JSONField(default=list, blank=True)  # what the trainer found (captions the encoders cut)
    # The training memory plan the run was started with (generation/training/memory): the card,
    # the predicted peak and the memory savers chosen to fit it; the trainer applies those savers.
    memory_plan = models.JSONField(default=dict, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lora = models.OneToOneField(
        "BrandLora", null=True, blank=True, on_delete=models.SET_NULL, related_name="training_run"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.training_set} on {self.model_key} ({self.get_status_display()})"

    def get_absolute_url(self) -> str:
        return reverse("training-run", args=[self.pk])

    @property
    def is_ended(self) -> bool:
        return self.status in ENDED_STATUSES

    @property
    def progress_percent(self) -> int:
        return round(100 * self.step / self.total_steps) if self.total_steps else 0

    @property
    def duration(self) -> timedelta | None:
        """How long it ran: to its end, or so far while it runs; None before it starts."""
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at
