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
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("training-set", args=[self.pk])


class TrainingImage(models.Model):
    training_set = models.ForeignKey(TrainingSet, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to=training_upload_to, max_length=300)
    original_name = models.CharField(max_length=200)
    caption = models.TextField(blank=True)
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
