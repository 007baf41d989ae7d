"""The pages' side of input images: a designer's own sketches, served only to their owner."""

from __future__ import annotations

import io
from functools import partial
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from PIL import Image

from ..forms import GenerateForm
from ..http import Request
from ..jobs import lifecycle, limits, submit
from ..jobs.recipe import job_settings
from ..models import BrandReference, GeneratedImage, ImageModel, InputImage
from ..uploads import UploadError
from .depth import depth_estimator, preview_name
from .edit import chain, edit_problem
from .forms import EditForm, InpaintForm, OutpaintForm
from .inpaint import inpaint_problem
from .inputs import from_studio_image, store_upload
from .sketch import MODES, prepare


@require_GET
@login_required
def input_file(request: Request, pk: UUID) -> FileResponse:
    """An input image's PNG (private like the outputs: anyone else's id is a 404)."""
    response = FileResponse(_opened(request, pk), content_type="image/png")
    response["Cache-Control"] = "private, max-age=86400"  # named by its content: never changes
    return response


def _opened(request: Request, pk: UUID) -> File:
    """The owner's input image's file, open; a 404 for anyone else's id or a file gone from storage."""
    sketch = InputImage.objects.filter(pk=pk, owner=request.user).first()
    if sketch is None:
        raise Http404("No such input image.")
    try:
        return sketch.file.open("rb")
    except OSError:
        raise Http404("That input image's file is no longer in storage.") from None


@require_GET
@login_required
def image_as_sketch(request: Request, pk: UUID) -> HttpResponse:
    """Use as sketch: the studio form with this image's settings, starting from the image."""
    return _studio_from_image(request, pk, "sketch_input")


@require_GET
@login_required
def image_as_reference(request: Request, pk: UUID) -> HttpResponse:
    """Use as reference: the studio form with this image's settings and it as a style reference."""
    return _studio_from_image(request, pk, "reference_inputs")


def _studio_from_image(request: Request, pk: UUID, field: str) -> HttpResponse:
    image = get_object_or_404(GeneratedImage.objects.select_related("job__preset"), pk=pk, job__owner=request.user)
    try:
        stored = from_studio_image(request.user, image)
    except UploadError as exc:
        messages.error(request, str(exc))
        return redirect(image)
    values = {**job_settings(image.job), "variations": image.job.images_total}
    values.pop("sketch_input" if field == "reference_inputs" else "reference_inputs", None)
    values[field] = stored.pk
    return redirect(f"{reverse('studio')}?{urlencode({k: str(v) for k, v in values.items()})}")


PREVIEW_SIDE = 256  # the form's preview of what the model starts from


@require_GET
@login_required
def input_prepared(request: Request, pk: UUID) -> HttpResponse | FileResponse:
    """What the model starts from in a mode (?mode=filled): the preview the form shows."""
    mode = request.GET.get("mode", "drawing")
    if mode not in MODES:
        return HttpResponse(f"mode is one of {', '.join(MODES)}.", status=400, content_type="text/plain")
    if mode == "depth":  # estimated by a worker (input_depth asks for it), then kept in storage
        return _depth_preview(request, pk)
    with _opened(request, pk) as fh:
        picture = Image.open(fh)
        picture.load()
    buffer = io.BytesIO()
    prepare(picture, mode, (PREVIEW_SIDE, PREVIEW_SIDE)).save(buffer, format="PNG")
    response = HttpResponse(buffer.getvalue(), content_type="image/png")
    response["Cache-Control"] = "private, max-age=86400"  # the input never changes under its id
    return response


def _depth_preview(request: Request, pk: UUID) -> FileResponse:
    stored = get_object_or_404(InputImage, pk=pk, owner=request.user)
    estimator = depth_estimator()
    name = preview_name(stored, estimator, PREVIEW_SIDE) if estimator else ""
    if not name or not default_storage.exists(name):
        raise Http404("Its depth has not been estimated yet.")
    response = FileResponse(default_storage.open(name, "rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=86400"  # named by the input and the estimator
    return response


DEPTH_POLLS = 40  # the sketch box asks every 1.5 s for a minute, then says the job will estimate it


@require_GET
@login_required
def input_depth(request: Request, pk: UUID) -> HttpResponse:
    """The sketch box's depth preview (htmx): the map once a worker has estimated it, else a
    note that asks again shortly; the first ask sends the worker its task."""
    stored = get_object_or_404(InputImage, pk=pk, owner=request.user)
    estimator = depth_estimator()
    polls = _polls(request.GET.get("polls"))
    context: dict[str, Any] = {"sketch": stored, "estimator": estimator, "polls": polls + 1, "waiting": False}
    if estimator is not None and not default_storage.exists(preview_name(stored, estimator, PREVIEW_SIDE)):
        try:
            # Each poll asks: one ask on the way per input, a few per user (the rest wait their turn).
            lifecycle.depth_preview_request(stored=stored, side=PREVIEW_SIDE)
        except Exception as exc:  # the broker is down: say so, as a job would
            context["error"] = f"The job queue is unreachable ({exc.__class__.__name__}); the job estimates it."
        else:
            context["waiting"] = polls < DEPTH_POLLS
            context["gave_up"] = polls >= DEPTH_POLLS
    return render(request, "generation/studio.html#depth-preview", context)


def _polls(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


@require_http_methods(["GET", "POST"])
@login_required
def sketch_box(request: Request) -> HttpResponse:
    """The studio form's sketch box drawn again: with a file just chosen (POST, stored at once)
    or another mode (GET), so it shows what the model will start from before Generate."""
    values = request.POST if request.method == "POST" else request.GET
    initial = {name: values.get(name) for name in ("sketch_input", "sketch_mode", "sketch_follow")}
    form = GenerateForm(initial=initial, user=request.user)
    status = 200
    if upload := request.FILES.get("sketch"):
        try:
            form.initial["sketch_input"] = str(store_upload(request.user, upload).pk)
        except UploadError as exc:
            form.initial["sketch_input"] = ""
            form.sketch_error = f"{upload.name}: {exc}"  # type: ignore[attr-defined]
            status = 422
    context = {"form": form, "open_sketch": True}
    return render(request, "generation/studio.html#sketch-box", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def image_inpaint(request: Request, pk: UUID) -> HttpResponse:
    """Inpaint: paint over part of an image (a canvas on the image) and say what goes there."""
    image = get_object_or_404(GeneratedImage.objects.select_related("job__preset"), pk=pk, job__owner=request.user)
    form = InpaintForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        made = partial(submit.job_inpaint, image=image, mask=data["mask"])
        return _repaint(request, image, form, OutpaintForm(), made, data)
    return _repaint_page(request, image, form, OutpaintForm(), status=422 if request.method == "POST" else 200)


@require_POST
@login_required
def image_outpaint(request: Request, pk: UUID) -> HttpResponse:
    """Outpaint: extend the canvas by a share of the image on any side, and draw what is there."""
    image = get_object_or_404(GeneratedImage.objects.select_related("job__preset"), pk=pk, job__owner=request.user)
    outpaint = OutpaintForm(request.POST)
    if outpaint.is_valid():
        made = partial(submit.job_outpaint, image=image, extend=outpaint.extend())
        return _repaint(request, image, InpaintForm(user=request.user), outpaint, made, outpaint.cleaned_data)
    return _repaint_page(request, image, InpaintForm(user=request.user), outpaint, status=422)


def _repaint(
    request: Request, image: GeneratedImage, form: Any, outpaint: Any, made: Any, data: dict[str, Any]
) -> HttpResponse:
    """The job the page's form asked for, or the page again with why not."""
    shown = outpaint if made.func is submit.job_outpaint else form
    job = _made(shown, partial(made, prompt=data.get("prompt") or "", variations=data["variations"]))
    return redirect(job) if job else _repaint_page(request, image, form, outpaint, status=422)


def _made(form: Any, make: Any) -> Any:
    """The job `make()` makes, or None with why not on the form (the model cannot, the input
    does not fit, the designer's limits are reached)."""
    try:
        return make()
    except ValidationError as exc:
        form.add_error(None, exc.messages[0])
    except limits.QuotaExceeded as exc:
        form.add_error(None, str(exc))
    return None


def _repaint_page(request: Request, image: GeneratedImage, form: Any, outpaint: Any, *, status: int) -> HttpResponse:
    model = ImageModel.objects.filter(key=image.job.model_key).first()
    problem = inpaint_problem(model) if model else "The model that made this image is no longer installed."
    for shown in (form, outpaint):
        shown.fields["prompt"].widget.attrs["placeholder"] = image.job.prompt
    context = {"image": image, "form": form, "outpaint": outpaint, "problem": problem}
    return render(request, "generation/inpaint.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def image_edit(request: Request, pk: UUID) -> HttpResponse:
    """Edit: an instruction ("make the background blue") applied to the image by an edit model."""
    image = get_object_or_404(GeneratedImage.objects.select_related("job__preset"), pk=pk, job__owner=request.user)
    problem = edit_problem(request.user)
    form = EditForm(request.POST or None, user=request.user)
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid() and not problem:
            data = form.cleaned_data
            make = partial(submit.job_edit, image=image, instruction=data["instruction"], model=data["model"])
            if job := _made(form, partial(make, variations=data["variations"])):
                return redirect(job)
    context = {"image": image, "form": form, "problem": problem, "edit_chain": chain(image)}
    return render(request, "generation/edit.html", context, status=status)


@require_GET
@login_required
def brand_reference_file(request: Request, pk: int) -> FileResponse:
    """An asset type's brand reference (every designer may see the brand's own)."""
    reference = get_object_or_404(BrandReference, pk=pk)
    try:
        response = FileResponse(reference.file.open("rb"))
    except OSError:
        raise Http404("That brand reference's file is no longer in storage.") from None
    response["Cache-Control"] = "private, max-age=3600"
    return response
