"""A designer's jobs and what they make: groups, jobs, inputs, images, live previews, favourites."""

import base64
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from ..speed.profile import summary
from .catalogue import AssetPreset


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    COMPLETE = "complete", "Complete"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ENDED_STATUSES = (JobStatus.COMPLETE, JobStatus.FAILED, JobStatus.CANCELLED)


class Quality(models.TextChoices):
    DRAFT = "draft", "Draft"
    STANDARD = "standard", "Standard"
    HIGH = "high", "High"
    ULTRA = "ultra", "Ultra"


@dataclass(frozen=True)
class QualityPreset:
    """The brief's quality tiers, applied on top of an asset type (whose steps are "standard")."""

    steps: float  # factor on the asset type's (or model's) steps: 15 / 28 / 40 / 50 at 28
    max_side: int | None  # drafts render small and fast
    upscale: int  # factor on the size asked, where the asset type upscales; 1 = none
    refine: bool  # an img2img refiner pass, where the asset type asks for it


# The brief: High = 2x, Ultra = 4x + refiner, so only Ultra refines.
QUALITY = {
    Quality.DRAFT: QualityPreset(steps=15 / 28, max_side=512, upscale=1, refine=False),
    Quality.STANDARD: QualityPreset(steps=1.0, max_side=None, upscale=1, refine=False),
    Quality.HIGH: QualityPreset(steps=40 / 28, max_side=None, upscale=2, refine=False),
    Quality.ULTRA: QualityPreset(steps=50 / 28, max_side=None, upscale=4, refine=True),
}


class GroupKind(models.TextChoices):
    MODELS = "models", "Compare models"
    PRESETS = "presets", "Compare asset types"
    BATCH = "batch", "Batch"
    LORAS = "loras", "Compare LoRA versions"


class JobGroup(models.Model):
    """Jobs submitted together and shown together: a comparison (one description across
    models or asset types, side by side) or a batch (many descriptions, one asset type)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="job_groups")
    kind = models.CharField(max_length=20, choices=GroupKind.choices)
    title = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("group", args=[self.id])

    @property
    def is_comparison(self) -> bool:
        return self.kind != GroupKind.BATCH


class GenerationJob(models.Model):
    """One Generate click. `params` holds every resolved parameter needed to reproduce it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    preset = models.ForeignKey(AssetPreset, on_delete=models.PROTECT, related_name="jobs")
    model_key = models.CharField(max_length=100)
    prompt = models.TextField()  # as the designer typed it
    quality = models.CharField(max_length=20, choices=Quality.choices, default=Quality.STANDARD)
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    error = models.TextField(blank=True)
    progress_step = models.PositiveIntegerField(default=0)
    progress_steps = models.PositiveIntegerField(default=0)
    images_done = models.PositiveIntegerField(default=0)
    images_total = models.PositiveIntegerField(default=0)
    timings = models.JSONField(default=dict, blank=True)  # seconds per phase: load, render, store
    # How the worker's card held the model (generation/memory/plan.py), {} on the CPU without overrides.
    memory_plan = models.JSONField(default=dict, blank=True, editable=False)
    # How the worker made it fast (generation/speed/): compiled, attention backend, step cache.
    speed = models.JSONField(default=dict, blank=True, editable=False)
    # What the worker found the designer should know (words the text encoders cut off).
    notes = models.JSONField(default=list, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)  # Celery node name holding the lease
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    # A new token at every claim: the worker holding it (and only that one) may write for the job
    # while it runs (jobs/lease.py), so a worker that froze and lost the job writes nothing.
    lease = models.UUIDField(null=True, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    more_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="more", help_text="Generate N more"
    )
    source_image = models.ForeignKey(
        "GeneratedImage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="variations",
        help_text="More like this: the image these are variations of",
    )
    group = models.ForeignKey(JobGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    # When its broker message was sent. Each user has a few jobs on the GPU queue at a time;
    # the rest wait here, in order, so one user's batch cannot hold everyone else back.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # The broker queue it was last sent to: a worker's own (generation/routing/) or the shared `gpu`;
    # "" before it is sent. A job waiting on a gone worker's queue is sent again.
    queue = models.CharField(max_length=220, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            models.Index(fields=["status", "heartbeat_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.preset} · {self.prompt[:40]}"

    def get_absolute_url(self) -> str:
        return reverse("job", args=[self.id])

    @property
    def speed_summary(self) -> str:
        """How its worker made it fast, in words ("compiled · First Block Cache at 0.35")."""
        return summary(self.speed or {})

    @property
    def is_ended(self) -> bool:
        return self.status in ENDED_STATUSES

    @property
    def variation(self) -> dict[str, Any]:
        """How "More like this" made this job: {"strength": "subtle", "mode": "img2img" | "seeds"}."""
        return self.params.get("variation") or {}

    @property
    def waiting_long(self) -> bool:
        return self.status == JobStatus.QUEUED and (timezone.now() - self.created_at).total_seconds() > 60

    @property
    def progress(self) -> float:
        """0..1 over all images and steps (batches run one after another)."""
        if self.status == JobStatus.COMPLETE:
            return 1.0
        if not self.images_total or not self.progress_steps:
            return 0.0
        batch = self.params.get("batch_size") or self.images_total
        per_batch = min(batch, self.images_total) / self.images_total
        return min(1.0, self.images_done / self.images_total + per_batch * self.progress_step / self.progress_steps)

    @property
    def current_images(self) -> str:
        """Which images the running batch is drawing: "image 3 of 4" or "images 1-4 of 4"."""
        first = min(self.images_done + 1, self.images_total)
        last = min(self.images_done + (self.params.get("batch_size") or 1), self.images_total)
        if first >= last:
            return f"image {first} of {self.images_total}"
        return f"images {first}–{last} of {self.images_total}"

    @property
    def progress_percent(self) -> int:
        return round(self.progress * 100)

    # What the live channel reads of each running job to see what moved, and all a progress
    # update shows (the bar, the step, the previews): one narrow query answers most ticks.
    LIVE_FIELDS = (
        "status",
        "attempts",
        "images_done",
        "images_total",
        "progress_step",
        "progress_steps",
        "timings",
        "created_at",
        "params",
    )

    @property
    def live_stamp(self) -> str:
        """What the page shows of this job, "<panel>/<progress>": the live channel sends the whole
        panel when the first part moved (status, a stored image, a retry, waiting long) and only
        the progress and previews when just the second did (a step, a finishing stage). Previews
        are written together with the progress step, so a new preview moves it too."""
        panel = (self.status, self.attempts, self.images_done, "w" if self.waiting_long else "")
        progress = (self.progress_step, self.progress_steps, (self.timings or {}).get("finishing", ""))
        return ".".join(map(str, panel)) + "/" + ".".join(map(str, progress))

    def live_moved(self, stamp: str) -> str:
        """What moved since the page's `stamp`: "" nothing, "progress" or "panel"."""
        if stamp == self.live_stamp:
            return ""
        same_panel = stamp.partition("/")[0] == self.live_stamp.partition("/")[0]
        return "progress" if same_panel and self.status == JobStatus.PROCESSING else "panel"


def input_upload_to(image: "InputImage", filename: str) -> str:
    return f"inputs/{image.owner_id}/{filename}"


class InputImage(models.Model):
    """An image a designer steers a job with (a sketch): private to its owner like the outputs,
    kept once per content (the sha256 of the stored PNG), so a retry, Reuse settings or a
    restored PNG refer to the same file. Jobs name it in `params["sketch"]`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="input_images")
    sha256 = models.CharField(max_length=64)
    file = models.FileField(upload_to=input_upload_to, max_length=300)
    name = models.CharField(max_length=200, blank=True, help_text="The uploaded file's name, or the studio image's")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    # When the sketch box asked a worker for its depth preview, until the worker stored it: one ask
    # on the way per input, a few per user (lifecycle.depth_preview_request).
    depth_asked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "sha256"], name="one_input_per_content")]

    def __str__(self) -> str:
        return self.name or self.sha256[:12]


def image_upload_to(image: "GeneratedImage", filename: str) -> str:
    return f"generations/{image.job.owner_id}/{image.job_id}/{filename}"


class GeneratedImage(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="images")
    index = models.PositiveSmallIntegerField()
    seed = models.BigIntegerField()
    file = models.FileField(upload_to=image_upload_to, max_length=300)
    # A small WebP for grids (generation/thumbnails.py); empty for images stored before it existed.
    thumbnail = models.FileField(upload_to=image_upload_to, max_length=300, blank=True)
    # The render as the model drew it, kept when finishing changes it, so finishing can run again
    # (after a failed stage) without rendering again. Empty when nothing was finished.
    rendered = models.FileField(upload_to=image_upload_to, max_length=300, blank=True)
    svg = models.FileField(upload_to=image_upload_to, max_length=300, blank=True)
    webp = models.FileField(upload_to=image_upload_to, max_length=300, blank=True)  # full size, alpha kept
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    has_alpha = models.BooleanField(default=False)
    # Share of pixels within the palette tolerance of a brand colour or the background (0–1),
    # of the render and of the finished image; null where the asset type has no palette.
    compliance_before = models.FloatField(null=True, blank=True)
    compliance_after = models.FloatField(null=True, blank=True)
    # What finishing did, in order: [{"stage": "upscale", "seconds": 0.12, "settings": {...}}, ...]
    finishing = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["job", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="one_image_per_index")]

    def __str__(self) -> str:
        return f"{self.job_id} #{self.index} (seed {self.seed})"

    def get_absolute_url(self) -> str:
        return reverse("image", args=[self.id])

    @property
    def license_restriction(self) -> str:
        """The model's notice when its outputs may not go into products; empty otherwise."""
        model = self.job.params.get("model") or {}
        if model.get("commercial_use", True):
            return ""
        return str(model.get("license_notice") or f"{model.get('name')}: not for production use.")

    @property
    def download_name(self) -> str:
        """Says what it is: asset type, the description's first words, seed."""
        subject = slugify(self.job.prompt)[:40].strip("-") or "image"
        return f"{self.job.preset.slug}-{subject}-seed{self.seed}.png"


class ImagePreview(models.Model):
    """What an image of a running job looks like so far: a small WebP that the worker overwrites
    every second or so. In the database, so every web process reads the same one, and it goes
    when its job goes; the worker deletes a job's previews when it stops running it."""

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="previews")
    index = models.PositiveSmallIntegerField()
    step = models.PositiveIntegerField()
    webp = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="one_preview_per_image")]

    def __str__(self) -> str:
        return f"{self.job_id} #{self.index} at step {self.step}"

    @property
    def data_uri(self) -> str:
        return "data:image/webp;base64," + base64.b64encode(bytes(self.webp)).decode("ascii")


class Favorite(models.Model):
    """A star on an image: one per user and image."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="favorites")
    image = models.ForeignKey(GeneratedImage, on_delete=models.CASCADE, related_name="favorites")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["user", "image"], name="one_favorite_per_user_and_image")]

    def __str__(self) -> str:
        return f"{self.user} ★ {self.image_id}"
