"""Jobs: submit, poll, regenerate, vary an image, cancel, download as a zip."""

from __future__ import annotations

import time
from typing import Any, Literal
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Field, Path, Router, Schema
from ninja.errors import HttpError

from ..control.edit import edit_models
from ..finishing.plan import Plan
from ..forms import GenerateForm
from ..http import job_zip_response
from ..jobs import lifecycle, submit
from ..jobs.recipe import MAX_SEED
from ..jobs.selectors import attach_live_previews
from ..models import Favorite, GeneratedImage, GenerationJob, ImagePreview, InputImage, JobStatus
from .common import InputSchema, absolute, own_image, own_job, user_of
from .errors import ERRORS, LIMITED, FieldError
from .images import ImageOut, image_out

router = Router(tags=["jobs"])


class SketchIn(InputSchema):
    input: UUID | None = Field(None, description="An input image's id (POST /inputs)")
    image: UUID | None = Field(None, description="One of your studio images' id")
    follow: Literal["close", "loose"] = Field("close", description="How closely the model follows it")
    mode: Literal["drawing", "filled", "canny", "tile", "depth"] = Field(
        "drawing",
        description="Start from the drawing as it is or with its closed outlines filled (img2img), or follow "
        "its canny edges, its layout (tile) or its depth (estimated by the depth estimator add-on) through the "
        "model's ControlNet add-on (see GET /models: can)",
    )


class ReferenceIn(InputSchema):
    input: UUID | None = Field(None, description="An input image's id (POST /inputs)")
    image: UUID | None = Field(None, description="One of your studio images' id")


class JobIn(InputSchema):
    asset_type: str = Field(min_length=1, max_length=50, examples=["icon"])
    description: str = Field(min_length=1, max_length=1000, examples=["a clipboard with three checkmarks"])
    model: str | None = Field(None, max_length=100, description="Model key; default: the studio's default model")
    quality: Literal["draft", "standard", "high", "ultra"] = "standard"
    size: str | None = Field(None, pattern=r"^[0-9]{2,4}x[0-9]{2,4}$", description="Default: the asset type's")
    variations: int = Field(4, ge=1, le=8)
    seed: int | None = Field(None, ge=0, le=MAX_SEED - 8)
    sketch: SketchIn | None = Field(None, description="Start from a sketch: an uploaded input or a studio image")
    references: list[ReferenceIn] = Field(
        default_factory=list,
        max_length=4,
        description="Style references (through the model's IP-Adapter add-on, or FLUX.2 klein's own image input)",
    )
    reference_strength: float = Field(
        0.6,
        ge=0.05,
        le=1.0,
        description="How strongly the references steer (IP-Adapter models; FLUX.2 klein "
        "follows its references as given)",
    )


class PreviewOut(Schema):
    index: int
    step: int
    url: str


class FinishingOut(Schema):
    output_size: str = Field(description="The finished images' size, WIDTHxHEIGHT", examples=["2048x2048"])
    upscale: int = Field(description="The tier's factor on top of the size asked (High 2, Ultra 4)")
    upscaler: str = Field(description='The upscaler that sizes the images, or "Lanczos" when none is installed')
    stages: list[str] = Field(description="The stages planned, in the order they run", examples=[["size", "svg"]])
    notes: list[str] = Field(description="What the designer should know, e.g. a skipped refiner pass")


class SketchOut(Schema):
    input: UUID
    follow: str
    mode: str
    strength: float | None = Field(
        description="The share of the steps redrawn from the sketch (img2img strength); null through a ControlNet"
    )
    control: str | None = Field(None, description="The ControlNet add-on's key, where one follows the sketch")
    control_scale: float | None = Field(None, description="Its conditioning scale")
    depth_estimator: str | None = Field(None, description="The depth estimator add-on's key (mode depth)")
    url: str


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
    notes: list[str] = Field(
        description="What the designer should know about the result: a description the model has no subject "
        "for, words of the prompt as sent that its text encoders cut off"
    )
    license_notice: str | None
    sketch: SketchOut | None = Field(None, description="The sketch the job started from, if any")
    references: list[str] = Field(default_factory=list, description="URLs of the style references it followed")
    created_at: str
    images: list[ImageOut]
    zip_url: str
    finishing: FinishingOut | None = Field(
        None, description="What finishing will do to each image; null for jobs from before finishing existed"
    )
    previews: list[PreviewOut] | None = Field(
        None,
        description="Only with ?previews=true: small WebPs of the images still being drawn, "
        "as they stand (a new one about every second while the job runs; none once it ends)",
    )


class MoreIn(InputSchema):
    count: int | None = Field(None, ge=1, le=8, description="Default: as many as the job had")


class VaryIn(InputSchema):
    strength: Literal["subtle", "strong"] = "subtle"


def _reference_url(request: HttpRequest, reference: dict[str, str]) -> str:
    if "brand" in reference:
        return absolute(request, f"/api/v1/brand-references/{reference['brand']}/file")
    return _input_url(request, reference["input"])


def _input_url(request: HttpRequest, key: str) -> str:
    return absolute(request, f"/api/v1/inputs/{key}/file")


def _sketch_out(request: HttpRequest, job: GenerationJob) -> dict[str, Any] | None:
    sketch = job.params.get("sketch")
    if not sketch:
        return None
    url = _input_url(request, sketch["input"])
    record = {"input": sketch["input"], "follow": sketch["follow"], "mode": sketch.get("mode", "drawing")}
    control = job.params.get("control") or {}
    steered = {"control": control.get("key"), "control_scale": control.get("scale")}
    steered["depth_estimator"] = (control.get("depth") or {}).get("key")
    return record | steered | {"strength": job.params.get("strength"), "url": url}


def job_out(
    request: HttpRequest, job: GenerationJob, starred: set[Any] | None = None, *, with_previews: bool = False
) -> dict[str, Any]:
    images = _images_starred(request, job, starred)
    if starred is None:
        starred = {image.pk for image in images if getattr(image, "starred", False)}
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
        "notes": [note for note in (job.params.get("subject_note"), *job.notes) if note],
        "license_notice": None if model.get("commercial_use", True) else model.get("license_notice") or "",
        "sketch": _sketch_out(request, job),
        "references": [_reference_url(request, r) for r in job.params.get("references", [])],
        "created_at": job.created_at.isoformat(),
        "images": [image_out(request, image, starred) for image in images],
        "zip_url": absolute(request, reverse("api-v1:job_zip", kwargs={"job_id": job.pk})),
        "finishing": finishing_out(job.params.get("finishing")),
        "previews": _previews_out(request, job) if with_previews else None,
    }


def _images_starred(request: HttpRequest, job: GenerationJob, starred: set[Any] | None) -> list[GeneratedImage]:
    """The job's stored images, each marked `starred` in the same query (a client polls a job each
    second: one query fewer per poll); no query while it runs and has stored none."""
    if not job.images_done and not job.is_ended:
        return []
    images = job.images.all()
    if starred is None:
        stars = Favorite.objects.filter(user=user_of(request), image=OuterRef("pk"))
        images = images.annotate(starred=Exists(stars))
    return list(images)


def finishing_out(params: Any) -> dict[str, Any] | None:
    """The plan frozen into the job at submission, summed up (None: no plan, or one this
    release cannot read)."""
    if not isinstance(params, dict):
        return None
    try:
        plan = Plan.from_params(params)
    except (TypeError, KeyError, ValueError):
        return None
    width, height = plan.output_size
    return {
        "output_size": f"{width}x{height}",
        "upscale": plan.upscale,
        "upscaler": plan.upscaler.name if plan.upscaler else "Lanczos",
        "stages": planned_stages(plan),
        "notes": list(plan.notes),
    }


def planned_stages(plan: Plan) -> list[str]:
    """The worker's stage order, keeping the stages this plan runs."""
    stages = [
        ("refine", plan.refine_strength is not None),
        ("upscale" if plan.upscale > 1 else "size", True),
        ("compliance", plan.palette is not None),
        ("palette", plan.correct and plan.palette is not None),
        ("sharpen", plan.sharpen),
        ("transparent", plan.transparent),
        ("svg", plan.svg),
    ]
    return [name for name, runs in stages if runs]


def _previews_out(request: HttpRequest, job: GenerationJob) -> list[dict[str, Any]]:
    attach_live_previews([job])
    return [
        {
            "index": preview.index,
            "step": preview.step,
            # the step in the URL: a client's cache never hands back an older preview
            "url": absolute(request, reverse("api-v1:job_preview", kwargs={"job_id": job.pk, "index": preview.index}))
            + f"?step={preview.step}",
        }
        for preview in getattr(job, "live_previews", [])
    ]


# (model key, asset type id) -> (when computed, seconds per image or None). A client polls each
# second; the last jobs' average moves far slower than that.
_per_image: dict[tuple[str, int], tuple[float, float | None]] = {}
ESTIMATE_TTL = 30.0


def _estimate(job: GenerationJob) -> float | None:
    """Seconds left, from the last completed jobs of this model and asset type (None: no history)."""
    if job.is_ended:
        return 0.0
    per_image = _seconds_per_image(job.model_key, job.preset_id)
    if per_image is None:
        return None
    total = per_image * job.images_total
    return round(max(0.0, total * (1 - job.progress)), 1)


def _seconds_per_image(model_key: str, preset_id: int) -> float | None:
    cached = _per_image.get((model_key, preset_id))
    if cached and time.monotonic() - cached[0] < ESTIMATE_TTL:
        return cached[1]
    recent = GenerationJob.objects.filter(
        model_key=model_key, preset_id=preset_id, status=JobStatus.COMPLETE, started_at__isnull=False
    ).order_by("-finished_at")[:5]
    times = [
        (done.finished_at - done.started_at).total_seconds() / max(1, done.images_total)
        for done in recent
        if done.finished_at and done.started_at
    ]
    value = sum(times) / len(times) if times else None
    _per_image[(model_key, preset_id)] = (time.monotonic(), value)
    return value


@router.post("/jobs", response={202: JobOut, **LIMITED})
def job_create(request: HttpRequest, payload: JobIn) -> tuple[int, dict[str, Any]]:
    """Submit a job: it is queued at once; poll GET /jobs/{id} for progress and images."""
    data = {
        "preset": payload.asset_type,
        "prompt": payload.description,
        "model": payload.model or "",
        "quality": payload.quality,
        "variations": str(payload.variations),
        "size": payload.size or "",
        "seed": "" if payload.seed is None else str(payload.seed),
    }
    if sketch := payload.sketch:
        if (sketch.input is None) == (sketch.image is None):
            raise FieldError("Name the sketch by one of input or image.", "sketch")
        key = "sketch_input" if sketch.input else "sketch_image"
        data |= {key: str(sketch.input or sketch.image), "sketch_follow": sketch.follow, "sketch_mode": sketch.mode}
    if payload.references:
        if any((ref.input is None) == (ref.image is None) for ref in payload.references):
            raise FieldError("Name each reference by one of input or image.", "references")
        data["reference_inputs"] = ",".join(str(ref.input) for ref in payload.references if ref.input)
        data["reference_images"] = ",".join(str(ref.image) for ref in payload.references if ref.image)
        data["reference_strength"] = str(payload.reference_strength)
    form = GenerateForm(data, user=user_of(request))
    if not form.is_valid():
        field, messages = next(iter(form.errors.items()))
        names = {"preset": "asset_type", "prompt": "description", "__all__": None}
        names |= dict.fromkeys(("sketch", "sketch_input", "sketch_image", "sketch_follow", "sketch_mode"), "sketch")
        names |= dict.fromkeys(("reference_inputs", "reference_images", "reference_strength"), "references")
        raise FieldError(str(messages[0]), names.get(field, field))
    job = submit.job_submit(owner=user_of(request), **form.job_fields())
    return 202, job_out(request, job)


@router.get("/jobs/{job_id}", response={200: JobOut, **ERRORS})
def job_detail(request: HttpRequest, job_id: UUID, previews: bool = False) -> dict[str, Any]:
    """Status, progress (step of steps, images done of total), and the images made so far;
    with ?previews=true also a preview of each image still being drawn."""
    return job_out(request, own_job(request, job_id), with_previews=previews)


@router.get("/jobs/{job_id}/previews/{index}", response={200: None, **ERRORS}, url_name="job_preview")
def job_preview(request: HttpRequest, job_id: UUID, index: int = Path(..., ge=0, le=999)) -> HttpResponse:
    """The current preview of one image of a running job (WebP, at most 128 px)."""
    job = own_job(request, job_id)
    preview = ImagePreview.objects.filter(job=job, index=index, index__gte=job.images_done).first()
    if preview is None or job.status != JobStatus.PROCESSING:
        raise HttpError(404, f"Image {index} of this job has no preview now: it is stored, not started, or ended.")
    response = HttpResponse(bytes(preview.webp), content_type="image/webp")
    response["Cache-Control"] = "private, max-age=60"  # its URL names the step
    return response


@router.get("/jobs/{job_id}/images", response={200: list[ImageOut], **ERRORS})
def job_images(request: HttpRequest, job_id: UUID) -> list[dict[str, Any]]:
    return job_out(request, own_job(request, job_id))["images"]


@router.post("/jobs/{job_id}/regenerate", response={202: JobOut, **LIMITED})
def job_regenerate(request: HttpRequest, job_id: UUID, payload: MoreIn) -> tuple[int, dict[str, Any]]:
    """Same settings, new seeds (`count` images; default: as many as the job had)."""
    job = own_job(request, job_id)
    if payload.count is not None and not 1 <= payload.count <= settings.STUDIO_MAX_VARIATIONS:
        raise FieldError(f"count must be between 1 and {settings.STUDIO_MAX_VARIATIONS}.", "count")
    return 202, job_out(request, submit.job_more(job=job, variations=payload.count))


@router.post("/jobs/{job_id}/cancel", response={200: JobOut, **ERRORS})
def job_cancel(request: HttpRequest, job_id: UUID) -> dict[str, Any]:
    job = own_job(request, job_id)
    lifecycle.job_cancel(job=job)
    job.refresh_from_db()
    return job_out(request, job)


@router.get("/jobs/{job_id}/zip", response={200: None, **ERRORS}, tags=["downloads"], url_name="job_zip")
def job_zip(request: HttpRequest, job_id: UUID) -> Any:
    """The job's images as one zip, streamed."""
    return job_zip_response(own_job(request, job_id))


@router.post("/images/{image_id}/more-like-this", response={202: JobOut, **LIMITED})
def image_vary(request: HttpRequest, image_id: UUID, payload: VaryIn) -> tuple[int, dict[str, Any]]:
    """Variations of one image: img2img from it where the model can, nearby seeds where not."""
    image = own_image(request, image_id)
    return 202, job_out(request, submit.job_vary(image=image, strength=payload.strength))


class InpaintIn(InputSchema):
    # Optional to the schema so that someone else's image id is a 404 before any body is judged.
    mask: UUID | None = Field(None, description="A mask's input id (POST /inputs?kind=mask): white where it changes")
    description: str | None = Field(None, max_length=1000, description="What goes there; default: the image's")
    variations: int = Field(4, ge=1, le=8)


@router.post("/images/{image_id}/inpaint", response={202: JobOut, **LIMITED})
def image_inpaint(request: HttpRequest, image_id: UUID, payload: InpaintIn) -> tuple[int, dict[str, Any]]:
    """Repaint where the mask paints over one of your images, keeping the rest (the model's inpaint
    pipeline); the job links to the image it repaints."""
    image = own_image(request, image_id)
    mask = InputImage.objects.filter(owner=user_of(request), pk=payload.mask).first() if payload.mask else None
    if mask is None:
        raise FieldError("No mask of yours has that id; upload it with POST /inputs?kind=mask.", "mask")
    try:
        job = submit.job_inpaint(
            image=image, mask=mask, prompt=payload.description or "", variations=payload.variations
        )
    except ValidationError as exc:
        message = exc.messages[0]
        raise FieldError(message, "mask" if message.startswith("The mask") else None) from None
    return 202, job_out(request, job)


class EditIn(InputSchema):
    # Optional to the schema so that someone else's image id is a 404 before any body is judged.
    instruction: str | None = Field(None, max_length=1000, examples=["make the background blue"])
    model: str | None = Field(None, max_length=100, description="An edit model's key; default: the first there is")
    variations: int = Field(2, ge=1, le=8)


@router.post("/images/{image_id}/edit", response={202: JobOut, **LIMITED})
def image_edit(request: HttpRequest, image_id: UUID, payload: EditIn) -> tuple[int, dict[str, Any]]:
    """Change one of your images with an instruction, through a model with an edit pipeline
    (GET /models: can "edit"); the job links to the image it edits."""
    image = own_image(request, image_id)
    if not (payload.instruction or "").strip():
        raise FieldError("Say what to change, e.g. “make the background blue”.", "instruction")
    model = None
    if payload.model:
        model = next((m for m in edit_models(user_of(request)) if m.key == payload.model), None)
        if model is None:
            names = ", ".join(m.key for m in edit_models(user_of(request))) or "none is installed"
            raise FieldError(f"{payload.model} is not a model you can edit with; those that can: {names}.", "model")
    try:
        job = submit.job_edit(
            image=image, instruction=(payload.instruction or "").strip(), model=model, variations=payload.variations
        )
    except ValidationError as exc:
        raise FieldError(exc.messages[0], "model") from None
    return 202, job_out(request, job)


class OutpaintIn(InputSchema):
    left: int = Field(0, ge=0, le=100, description="% of the image's width added on the left")
    right: int = Field(0, ge=0, le=100)
    top: int = Field(0, ge=0, le=100, description="% of the image's height added on top")
    bottom: int = Field(0, ge=0, le=100)
    description: str | None = Field(None, max_length=1000, description="What goes there; default: the image's")
    variations: int = Field(4, ge=1, le=8)


@router.post("/images/{image_id}/outpaint", response={202: JobOut, **LIMITED})
def image_outpaint(request: HttpRequest, image_id: UUID, payload: OutpaintIn) -> tuple[int, dict[str, Any]]:
    """Extend one of your images' canvas on any side; the model draws what is there (its inpaint
    pipeline over the image on the larger canvas) and keeps the image as it is."""
    image = own_image(request, image_id)
    extend = {"left": payload.left, "right": payload.right, "top": payload.top, "bottom": payload.bottom}
    try:
        job = submit.job_outpaint(
            image=image, extend=extend, prompt=payload.description or "", variations=payload.variations
        )
    except ValidationError as exc:
        raise FieldError(exc.messages[0]) from None
    return 202, job_out(request, job)
