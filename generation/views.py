from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling, reswap, retarget
from django_htmx.middleware import HtmxDetails

from . import services
from .forms import GenerateForm
from .models import GeneratedImage, GenerationJob

RECENT_JOBS = 10


class Request(HttpRequest):
    """What these views receive: a signed-in user (login_required) and htmx details (middleware)."""

    htmx: HtmxDetails
    user: User


def _get_job_for_user(request: Request, pk: UUID) -> GenerationJob:
    # Anyone else's job is a 404, not a 403: ids of other people's work are not confirmed.
    return get_object_or_404(GenerationJob.objects.select_related("preset"), pk=pk, owner=request.user)


def _get_image_for_user(request: Request, pk: UUID) -> GeneratedImage:
    return get_object_or_404(GeneratedImage.objects.select_related("job__preset"), pk=pk, job__owner=request.user)


def _job_panel(request: Request, job: GenerationJob) -> HttpResponse:
    response = render(request, "generation/job.html#job-panel", {"job": job})
    if request.htmx and job.is_ended:
        # 286 tells htmx to stop polling; the final panel is still swapped in.
        response.status_code = HttpResponseStopPolling.status_code
    return response


@login_required
def studio(request: Request) -> HttpResponse:
    if request.method == "POST":
        form = GenerateForm(request.POST)
        if form.is_valid():
            job = services.job_create(
                owner=request.user,
                preset=form.cleaned_data["preset"],
                prompt=form.cleaned_data["prompt"],
                model=form.cleaned_data["model"],
                quality=form.cleaned_data["quality"],
                variations=form.cleaned_data["variations"],
                width=form.cleaned_data["width"],
                height=form.cleaned_data["height"],
                seed=form.cleaned_data["seed"],
            )
            return _job_panel(request, job) if request.htmx else redirect(job)
        if request.htmx:
            response = render(request, "generation/studio.html#generate-form", {"form": form}, status=422)
            return reswap(retarget(response, "#generate-form"), "outerHTML")
        status = 422
    else:
        form = GenerateForm(initial={"preset": request.GET.get("preset")})
        status = 200
    jobs = GenerationJob.objects.filter(owner=request.user).select_related("preset").prefetch_related("images")
    return render(request, "generation/studio.html", {"form": form, "jobs": jobs[:RECENT_JOBS]}, status=status)


@require_GET
@login_required
def size_options(request: Request) -> HttpResponse:
    """The size <select> for the asset type just picked (htmx swaps it in)."""
    form = GenerateForm(initial={"preset": request.GET.get("preset")})
    return render(request, "generation/studio.html#size-field", {"form": form})


@require_GET
@login_required
def job(request: Request, pk: UUID) -> HttpResponse:
    job = _get_job_for_user(request, pk)
    if request.htmx:
        return _job_panel(request, job)
    return render(request, "generation/job.html", {"job": job})


@require_POST
@login_required
def job_retry(request: Request, pk: UUID) -> HttpResponse:
    new = services.job_retry(job=_get_job_for_user(request, pk))
    return _job_panel(request, new) if request.htmx else redirect(new)


@require_POST
@login_required
def job_cancel(request: Request, pk: UUID) -> HttpResponse:
    job = _get_job_for_user(request, pk)
    services.job_cancel(job=job)
    job.refresh_from_db()
    return _job_panel(request, job) if request.htmx else redirect(job)


@require_GET
@login_required
def image(request: Request, pk: UUID) -> HttpResponse:
    return render(request, "generation/image.html", {"image": _get_image_for_user(request, pk)})


@require_GET
@login_required
def image_file(request: Request, pk: UUID) -> FileResponse:
    """The PNG itself, streamed from storage in chunks (never read whole into memory)."""
    image = _get_image_for_user(request, pk)
    download = request.GET.get("download") == "1"
    response = FileResponse(
        image.file.open("rb"), content_type="image/png", as_attachment=download, filename=image.download_name
    )
    response["Cache-Control"] = "private, max-age=86400"
    return response
