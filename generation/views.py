import math
from collections.abc import Callable
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, prefetch_related_objects
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import escape
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling, reswap, retarget

from . import ops
from .auth import is_reviewer, models_for
from .control.addons import any_takes_references
from .control.edit import edit_models
from .credentials import verify as provenance
from .credentials.download import signs_downloads
from .forms import NOT_YOUR_TOKEN, BatchForm, CompareForm, GenerateForm, TokenForm, TokenRevokeForm, search_text
from .http import (
    Request,
    job_zip_response,
    png_response,
    svg_response,
    thumbnail_response,
    webp_response,
    zip_response,
)
from .jobs import lifecycle, limits, recipe, submit
from .jobs.selectors import COMPLIANCE_FLOORS, HISTORY_SORTS, attach_live_previews, jobs_sorted, jobs_with_compliance
from .lineage import image_lineage
from .models import (
    AssetPreset,
    Favorite,
    GeneratedImage,
    GenerationJob,
    GroupKind,
    ImageModel,
    JobGroup,
    JobStatus,
)
from .png_meta import FORM_FIELDS, NotAStudioImage, read_settings
from .review.selectors import image_submissions
from .tokens import token_create, token_revoke
from .uploads import UploadError, bytes_label

RECENT_JOBS = 10
HISTORY_PAGE = 20
MAX_SELECTION = 500
# The live channel's panels: the name a page sends their stamps under -> the partial drawn for them.
LIVE_PANELS = {"job": "generation/job.html#job-panel", "item": "generation/group.html#group-item"}
LIVE_MAX_PANELS = 200  # a batch has at most 50 items; a studio page shows 10 jobs and the ones added to it


def _get_job_for_user(request: Request, pk: UUID) -> GenerationJob:
    # Anyone else's job is a 404, not a 403: ids of other people's work are not confirmed.
    return get_object_or_404(GenerationJob.objects.select_related("preset"), pk=pk, owner=request.user)


def _get_image_for_user(request: Request, pk: UUID) -> GeneratedImage:
    return get_object_or_404(GeneratedImage.objects.select_related("job__preset"), pk=pk, job__owner=request.user)


def _favorite_ids(request: Request, **shown: object) -> set[object]:
    """The starred ones among the images a page shows (`shown` narrows the query to them):
    job panels poll every second, so this must not read every star the user ever made."""
    return set(Favorite.objects.filter(user=request.user, **shown).values_list("image_id", flat=True))


def _job_panel(request: Request, job: GenerationJob) -> HttpResponse:
    attach_live_previews([job])
    context = {"job": job, "favorite_ids": _favorite_ids(request, image__job=job)}
    response = render(request, "generation/job.html#job-panel", context)
    if request.htmx and not job.is_ended:
        # A panel that runs joins the page's live channel, which starts again if it had stopped.
        channel = render_to_string("generation/job.html#live-channel", {"live": True, "oob": True}, request)
        response.content += channel.encode()
    if request.htmx and job.is_ended:
        # 286 tells htmx to stop polling; the final panel is still swapped in.
        response.status_code = HttpResponseStopPolling.status_code
    return response


def _over_quota(request: Request, exc: limits.QuotaExceeded) -> HttpResponse:
    """A 429 saying why and when to try again (a full page goes back with the message)."""
    if request.htmx:
        response = HttpResponse(f'<p class="errors" role="alert">{escape(str(exc))}</p>', status=429)
    else:
        messages.error(request, str(exc))
        response = redirect(request.headers.get("Referer") or "studio")
    response["Retry-After"] = str(exc.retry_after)
    return response


@login_required
def studio(request: Request) -> HttpResponse:
    if request.method == "POST":
        form = GenerateForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            try:
                job = submit.job_submit(owner=request.user, **form.job_fields())
            except limits.QuotaExceeded as exc:
                return _over_quota(request, exc)
            return _job_panel(request, job) if request.htmx else redirect(job)
        if request.htmx:
            response = render(request, "generation/studio.html#generate-form", {"form": form}, status=422)
            return reswap(retarget(response, "#generate-form"), "outerHTML")
        status = 422
    else:
        # Tweak prompt / Reuse settings / a restored PNG arrive as query parameters.
        form = GenerateForm(initial={k: v for k, v in request.GET.items() if k in FORM_FIELDS}, user=request.user)
        status = 200
    jobs = GenerationJob.objects.filter(owner=request.user).select_related("preset").prefetch_related("images")
    recent = list(jobs[:RECENT_JOBS])
    attach_live_previews(recent)
    context = {
        "form": form,
        "jobs": recent,
        "favorite_ids": _favorite_ids(request, image__job__in=recent),
        "live": any(not job.is_ended for job in recent),
    }
    if request.user.is_staff:
        context["missing_loras"] = recipe.missing_loras()
    return render(request, "generation/studio.html", context, status=status)


@require_GET
@login_required
def size_options(request: Request) -> HttpResponse:
    """The size <select> for the asset type just picked (htmx swaps it in)."""
    form = GenerateForm(initial={"preset": request.GET.get("preset")})
    response = render(request, "generation/studio.html#size-field", {"form": form})
    # What the tiers do depends on the asset type too: its note comes along, out of band.
    notes = render_to_string("generation/studio.html#tier-notes", {"form": form, "oob": True}, request)
    response.content += notes.encode()
    return response


@require_GET
@login_required
def job(request: Request, pk: UUID) -> HttpResponse:
    job = _get_job_for_user(request, pk)
    if request.htmx:
        return _job_panel(request, job)
    attach_live_previews([job])
    context = {"job": job, "favorite_ids": _favorite_ids(request, image__job=job), "live": not job.is_ended}
    return render(request, "generation/job.html", context)


@require_POST
@login_required
def live(request: Request) -> HttpResponse:
    """The page's live channel: the stamps of its running panels in, the panels that changed out
    (swapped out of band), in a few queries whatever their number. 204: nothing changed; 286:
    nothing runs any more, so the page stops asking. Anyone else's ids are ignored."""
    try:
        asked = _live_asked(request)
    except ValueError as exc:
        return JsonResponse({"message": str(exc), "field": "job"}, status=400)
    # Most ticks change nothing or only a running job's step: one narrow query answers those,
    # and whole rows are read only for the panels that must be drawn again.
    mine = GenerationJob.objects.filter(owner=request.user)
    jobs = list(mine.filter(pk__in=asked).only(*GenerationJob.LIVE_FIELDS))
    running = any(not job.is_ended for job in jobs)
    moved = {job.pk: job.live_moved(asked[job.pk][1]) for job in jobs}
    # A group page's items are small panels: drawn whole whatever moved.
    stepped = [job for job in jobs if moved[job.pk] == "progress" and asked[job.pk][0] == "job"]
    redrawn = [pk for pk, what in moved.items() if what and not (what == "progress" and asked[pk][0] == "job")]
    status = 200 if running else HttpResponseStopPolling.status_code
    if not stepped and not redrawn:
        return HttpResponse(status=204 if running else status)
    changed = list(mine.filter(pk__in=redrawn).select_related("preset", "group")) if redrawn else []
    kinds = {pk: kind for pk, (kind, _) in asked.items()}
    return HttpResponse(_live_progress(request, stepped) + _live_panels(request, changed, kinds), status=status)


def _live_progress(request: Request, jobs: list[GenerationJob]) -> str:
    """The bar, step and previews of running jobs whose panel is otherwise as the page has it."""
    attach_live_previews(jobs)
    template = "generation/job.html#job-progress"
    return "".join(render_to_string(template, {"job": job, "progress_oob": True}, request) for job in jobs)


def _live_asked(request: Request) -> dict[UUID, tuple[str, str]]:
    """{job id: (panel kind, stamp the page has)} from `job=<id>:<stamp>` and `item=<id>:<stamp>`."""
    asked: dict[UUID, tuple[str, str]] = {}
    for kind in LIVE_PANELS:
        for value in request.POST.getlist(kind):
            pk, _, stamp = value.partition(":")
            try:
                asked[UUID(pk)] = (kind, stamp)
            except ValueError:
                raise ValueError("A panel id the page sent is not a job id; reload the page.") from None
    if len(asked) > LIVE_MAX_PANELS:
        raise ValueError(f"At most {LIVE_MAX_PANELS} running panels per page; reload the page.")
    return asked


def _live_panels(request: Request, jobs: list[GenerationJob], kinds: dict[UUID, str]) -> str:
    if not jobs:
        return ""
    with_images = _prefetch_stored_images(jobs)
    attach_live_previews(jobs)
    starred = _favorite_ids(request, image__job__in=with_images) if with_images else set()
    shared = {"oob": True, "favorite_ids": starred}
    parts, groups = [], _live_groups([job for job in jobs if kinds[job.pk] == "item"])
    for group, siblings in groups:
        done = sum(job.status == JobStatus.COMPLETE for job in siblings)
        context = {**shared, "group": group, "jobs": siblings, "done": done}
        parts.append(render_to_string("generation/group.html#group-head", context, request))
    positions = {job.pk: n for _, siblings in groups for n, job in enumerate(siblings, start=1)}
    for job in jobs:
        context = {**shared, "job": job, "group": job.group, "position": positions.get(job.pk)}
        parts.append(render_to_string(LIVE_PANELS[kinds[job.pk]], context, request))
    return "".join(parts)


def _prefetch_stored_images(jobs: list[GenerationJob]) -> list[GenerationJob]:
    """Prefetch the images of the jobs that have stored some, and return those jobs. A running
    panel that has stored none yet (the usual case on each live tick) costs no query for them."""
    with_images = [job for job in jobs if job.images_done or job.is_ended]
    prefetch_related_objects(with_images, "images")
    for job in jobs:
        if job not in with_images:
            job._prefetched_objects_cache = {"images": job.images.none()}  # type: ignore[attr-defined]
    return with_images


def _live_groups(items: list[GenerationJob]) -> list[tuple[JobGroup, list[GenerationJob]]]:
    """Each group a changed item belongs to, with all its jobs (its header counts them; a batch
    numbers its items), one query per group: a page shows one."""
    groups = {job.group_id: job.group for job in items if job.group is not None}
    return [
        (group, list(group.jobs.select_related("preset").order_by("created_at")))
        for group in groups.values()
        if group is not None
    ]


@require_POST
@login_required
def job_retry(request: Request, pk: UUID) -> HttpResponse:
    return _follow_up(request, pk, submit.job_retry)


def _follow_up(request: Request, pk: UUID, make: Callable[..., GenerationJob]) -> HttpResponse:
    """A new job made from one of the user's jobs (retry, more), within the fair-use limits."""
    job = _get_job_for_user(request, pk)
    try:
        new = make(job=job)
    except limits.QuotaExceeded as exc:
        return _over_quota(request, exc)
    return _job_panel(request, new) if request.htmx else redirect(new)


@require_POST
@login_required
def job_refinish(request: Request, pk: UUID) -> HttpResponse:
    """ "Retry finishing" on a job whose finishing failed: its renders are finished again."""
    job = _get_job_for_user(request, pk)
    try:
        job = lifecycle.job_refinish(job=job)
    except lifecycle.CannotRefinish as exc:
        if request.htmx:
            return HttpResponse(f'<p class="errors" role="alert">{escape(str(exc))}</p>', status=409)
        messages.error(request, str(exc))
    return _job_panel(request, job) if request.htmx else redirect(job)


@require_POST
@login_required
def job_cancel(request: Request, pk: UUID) -> HttpResponse:
    job = _get_job_for_user(request, pk)
    lifecycle.job_cancel(job=job)
    job.refresh_from_db()
    return _job_panel(request, job) if request.htmx else redirect(job)


@require_GET
@login_required
def image(request: Request, pk: UUID) -> HttpResponse:
    image = _get_image_for_user(request, pk)
    context = {
        "image": image,
        **image_lineage(image),
        "submissions": image_submissions(image),
        "favorite_ids": _favorite_ids(request, image=image),
        "image_can_vary": ImageModel.objects.filter(key=image.job.model_key, supports_img2img=True).exists(),
        "image_can_inpaint": any(m.supports_inpaint for m in ImageModel.objects.filter(key=image.job.model_key)),
        # Edit and Use as reference only where some model this designer may use can do them.
        "image_can_edit": bool(edit_models(request.user)),
        "image_can_reference": any_takes_references(models_for(request.user, ImageModel.objects.filter(enabled=True))),
    }
    return render(request, "generation/image.html", context)


@require_GET
@login_required
def image_file(request: Request, pk: UUID) -> HttpResponse | FileResponse:
    """The PNG, streamed from storage in chunks (never read whole into memory), or a WebP copy,
    each with its content credentials."""
    image = _get_image_for_user(request, pk)
    download = request.GET.get("download") == "1"
    if request.GET.get("format") == "webp":
        return webp_response(image, download=download)
    if request.GET.get("format") == "svg":
        return _svg(request, image, download=download)
    if download and settings.STUDIO_SIGNED_DOWNLOADS and not signs_downloads():
        # The blob store serves the bytes itself, under a URL that works for a few minutes only
        # (a manifest is signed per download, in the studio: then the studio serves it).
        disposition = f'attachment; filename="{image.download_name}"'
        storage: Any = image.file.storage  # AzureStorage.url takes the SAS parameters
        return redirect(storage.url(image.file.name, parameters={"content_disposition": disposition}))
    response = png_response(image, download=download)
    response["Cache-Control"] = "private, max-age=86400"
    return response


@require_GET
@login_required
def image_thumbnail(request: Request, pk: UUID) -> FileResponse:
    return thumbnail_response(_get_image_for_user(request, pk))


def _svg(request: Request, image: GeneratedImage, *, download: bool) -> HttpResponse | FileResponse:
    if not image.svg:
        return render(request, "generation/no_svg.html", {"image": image}, status=404)
    response = svg_response(image, download=download)
    response["Cache-Control"] = "private, max-age=86400"
    return response


@require_http_methods(["POST", "DELETE"])
@login_required
def image_favorite(request: Request, pk: UUID) -> HttpResponse:
    """Star (POST) or unstar (DELETE) an image; a second star is a 409, like a duplicate bookmark."""
    image = _get_image_for_user(request, pk)
    status = 200
    if request.method == "POST":
        _, created = Favorite.objects.get_or_create(user=request.user, image=image)
        status = 200 if created else 409
    else:
        Favorite.objects.filter(user=request.user, image=image).delete()
    if not request.htmx:
        return redirect(request.headers.get("Referer") or image.get_absolute_url())
    context = {"image": image, "favorite_ids": _favorite_ids(request, image=image)}
    return render(request, "generation/job.html#favorite-button", context, status=status)


@require_GET
@login_required
def favorites(request: Request) -> HttpResponse:
    stars = Favorite.objects.filter(user=request.user).select_related("image__job__preset").order_by("-created_at")
    page = Paginator(stars, 48).get_page(request.GET.get("page"))
    # Everything on this page is starred by definition.
    context = {"page": page, "favorite_ids": {star.image_id for star in page}}
    return render(request, "generation/favorites.html", context)


@require_GET
@login_required
def history(request: Request) -> HttpResponse:
    jobs = GenerationJob.objects.filter(owner=request.user).select_related("preset")
    keys = ("preset", "model", "status", "q", "starred", "compliance", "sort")
    filters = {k: search_text(request.GET.get(k, "")).strip() for k in keys}
    if filters["preset"]:
        jobs = jobs.filter(preset__slug=filters["preset"])
    if filters["model"]:
        jobs = jobs.filter(model_key=filters["model"])
    if filters["status"] in JobStatus.values:
        jobs = jobs.filter(status=filters["status"])
    if filters["q"]:
        jobs = jobs.filter(prompt__icontains=filters["q"][:200])
    if filters["starred"]:
        jobs = jobs.filter(images__favorites__user=request.user).distinct()
    floor = _percent(filters["compliance"])
    if floor is not None:
        jobs = jobs_with_compliance(jobs, minimum=floor / 100)
    jobs = jobs_sorted(jobs, filters["sort"])
    page = Paginator(jobs.prefetch_related("images"), HISTORY_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "filters": filters,
        "presets": AssetPreset.objects.all(),
        "models": ImageModel.objects.all(),
        "statuses": JobStatus.choices,
        "compliance_floors": COMPLIANCE_FLOORS,
        "sorts": HISTORY_SORTS,
        "favorite_ids": _favorite_ids(request, image__job__in=page.object_list),
        "query": _without_page(request),
    }
    return render(request, "generation/history.html", context)


def _percent(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return min(100.0, max(0.0, number)) if math.isfinite(number) else None


def _without_page(request: Request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@require_GET
@login_required
def job_zip(request: Request, pk: UUID) -> StreamingHttpResponse:
    return job_zip_response(_get_job_for_user(request, pk))


@require_GET
@login_required
def favorites_zip(request: Request) -> StreamingHttpResponse:
    images = GeneratedImage.objects.filter(favorites__user=request.user).select_related("job__preset")
    return zip_response(images.order_by("-favorites__created_at").iterator(), "favorites.zip")


@require_GET
@login_required
def images_zip(request: Request) -> HttpResponse | StreamingHttpResponse:
    """A selection (the ticked images of any page) as one zip: ?id=...&id=..."""
    try:
        ids = {UUID(value) for value in request.GET.getlist("id")}
    except ValueError:
        return JsonResponse({"error": "The selection holds an id that is not an image id."}, status=400)
    if not ids:
        messages.error(request, "Tick the images to download first.")
        return redirect(request.headers.get("Referer") or "studio")
    if len(ids) > MAX_SELECTION:
        return JsonResponse({"error": f"Select at most {MAX_SELECTION} images per zip."}, status=400)
    images = GeneratedImage.objects.filter(pk__in=ids, job__owner=request.user).select_related("job__preset")
    if images.count() != len(ids):
        return JsonResponse({"error": "Some of the selected images do not exist or are not yours."}, status=404)
    return zip_response(images.order_by("job__created_at", "index").iterator(), "selection.zip")


def _studio_with(values: dict[str, object]) -> HttpResponse:
    return redirect(f"{reverse('studio')}?{urlencode({k: str(v) for k, v in values.items()})}")


@require_POST
@login_required
def job_more(request: Request, pk: UUID) -> HttpResponse:
    """Same settings, new seeds; htmx puts the new panel right after the one it came from."""
    return _follow_up(request, pk, submit.job_more)


@require_GET
@login_required
def job_reuse(request: Request, pk: UUID) -> HttpResponse:
    """Tweak prompt: the studio form filled with every setting of this job."""
    return _studio_with(recipe.job_settings(_get_job_for_user(request, pk)))


@require_GET
@login_required
def image_reuse(request: Request, pk: UUID) -> HttpResponse:
    """Reuse settings: this image's job and its seed."""
    image = _get_image_for_user(request, pk)
    return _studio_with(recipe.job_settings(image.job, seed=image.seed))


@require_POST
@login_required
def image_restore(request: Request) -> HttpResponse:
    """A studio PNG dropped back in: its embedded settings fill the form."""
    upload = request.FILES.get("image")
    if upload is None:
        messages.error(request, "Choose a PNG made by the studio.")
        return redirect("studio")
    try:
        values = read_settings(upload, upload.size or 0)
    except NotAStudioImage as exc:
        messages.error(request, str(exc))
        return redirect("studio")
    return _studio_with(values)


@require_POST
@login_required
def image_vary(request: Request, pk: UUID) -> HttpResponse:
    """More like this: Subtle or Strong variations of one image."""
    image = _get_image_for_user(request, pk)
    strength = request.POST.get("strength", "")
    if strength not in recipe.VARIATION_STRENGTH:
        return JsonResponse({"error": "strength must be subtle or strong."}, status=400)
    try:
        new = submit.job_vary(image=image, strength=strength)
    except limits.QuotaExceeded as exc:
        return _over_quota(request, exc)
    return _job_panel(request, new) if request.htmx else redirect(new)


@login_required
def compare(request: Request) -> HttpResponse:
    """One description side by side across models, or across asset types."""
    if request.method == "POST":
        form = CompareForm(request.POST, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            try:
                group = submit.group_compare(
                    owner=request.user,
                    prompt=data["prompt"],
                    presets=data["presets"],
                    models=data["models"],
                    quality=data["quality"],
                    variations=data["variations"],
                    seed=data["seed"],
                )
            except limits.QuotaExceeded as exc:
                return _over_quota(request, exc)
            return redirect(group)
    else:
        presets = AssetPreset.objects.filter(enabled=True)
        form = CompareForm(
            user=request.user,
            initial={
                "prompt": request.GET.get("prompt", ""),
                "presets": [p.slug for p in presets[:1]],
                "models": [settings.STUDIO_DEFAULT_MODEL],
            },
        )
    return _group_form_page(request, form, "generation/compare.html", [GroupKind.MODELS, GroupKind.PRESETS])


@login_required
def batch(request: Request) -> HttpResponse:
    """Many descriptions for one asset type in one submission."""
    if request.method == "POST":
        form = BatchForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            try:
                group = submit.group_batch(
                    owner=request.user,
                    preset=data["preset"],
                    model=data["model"],
                    prompts=data["prompts"],
                    quality=data["quality"],
                    variations=data["variations"],
                    width=data["width"],
                    height=data["height"],
                )
            except limits.QuotaExceeded as exc:
                return _over_quota(request, exc)
            return redirect(group)
    else:
        form = BatchForm(user=request.user)
    return _group_form_page(request, form, "generation/batch.html", [GroupKind.BATCH])


def _group_form_page(request: Request, form: CompareForm | BatchForm, template: str, kinds: list[str]) -> HttpResponse:
    groups = JobGroup.objects.filter(owner=request.user, kind__in=kinds)[:10]
    status = 422 if form.is_bound else 200
    return render(request, template, {"form": form, "groups": groups}, status=status)


@require_GET
@login_required
def group(request: Request, pk: UUID) -> HttpResponse:
    group = get_object_or_404(JobGroup, pk=pk, owner=request.user)
    jobs = list(group.jobs.select_related("preset").prefetch_related("images").order_by("created_at"))
    attach_live_previews(jobs)
    context = {
        "group": group,
        "jobs": jobs,
        "ended": all(job.is_ended for job in jobs),
        "live": not all(job.is_ended for job in jobs),
        "done": sum(job.status == JobStatus.COMPLETE for job in jobs),
        "favorite_ids": _favorite_ids(request, image__job__group=group),
    }
    if not request.htmx:
        return render(request, "generation/group.html", context)
    response = render(request, "generation/group.html#group-body", context)
    if context["ended"]:
        response.status_code = HttpResponseStopPolling.status_code
    return response


@require_GET
@login_required
def group_zip(request: Request, pk: UUID) -> StreamingHttpResponse:
    """Every image of a comparison or batch; a model comparison gets one folder per model."""
    group = get_object_or_404(JobGroup, pk=pk, owner=request.user)
    images = GeneratedImage.objects.filter(job__group=group).select_related("job__preset")
    images = images.order_by("job__created_at", "index")
    folder = (lambda image: image.job.model_key) if group.kind == GroupKind.MODELS else None
    return zip_response(images.iterator(), f"{group.kind}-{str(group.pk)[:8]}.zip", folder=folder)


@require_GET
@staff_member_required
def ops_dashboard(request: Request) -> HttpResponse:
    """Staff: queue depth, live workers, and everyone's jobs (cancel any)."""
    jobs = GenerationJob.objects.select_related("preset", "owner")
    status = request.GET.get("status", "")
    if status in JobStatus.values:
        jobs = jobs.filter(status=status)
    context = {
        "depths": ops.queue_depths(),
        "workers": ops.workers(),
        "counts": dict(
            GenerationJob.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.PROCESSING])
            .order_by()
            .values_list("status")
            .annotate(n=Count("pk"))
        ),
        "running": GenerationJob.objects.filter(status=JobStatus.PROCESSING).select_related("owner"),
        "page": Paginator(jobs, 50).get_page(request.GET.get("page")),
        "statuses": JobStatus.choices,
        "status": status,
        "query": _without_page(request),
    }
    return render(request, "generation/ops.html", context)


@require_POST
@staff_member_required
def ops_cancel(request: Request, pk: UUID) -> HttpResponse:
    job = get_object_or_404(GenerationJob, pk=pk)
    lifecycle.job_cancel(job=job)
    messages.success(request, f"Cancelled {job.owner}'s job “{job.prompt[:60]}”.")
    return redirect(request.headers.get("Referer") or "ops")


@login_required
def profile(request: Request) -> HttpResponse:
    """Personal API tokens: create (the secret is shown once, here), list, revoke."""
    secret, form = None, TokenForm()
    if request.method == "POST" and "revoke" in request.POST:
        revoke = TokenRevokeForm(request.POST)
        if revoke.is_valid() and token_revoke(user=request.user, token_id=revoke.cleaned_data["revoke"]):
            messages.success(request, "Token revoked: it no longer works.")
        else:
            messages.error(request, NOT_YOUR_TOKEN)
        return redirect("profile")
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            _, secret = token_create(user=request.user, name=form.cleaned_data["name"])
            form = TokenForm()
    tokens = request.user.api_tokens.filter(revoked_at__isnull=True)
    status = 422 if form.errors else 200
    return render(request, "generation/profile.html", {"tokens": tokens, "secret": secret, "form": form}, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def verify(request: Request) -> HttpResponse:
    """Verify: any file in, and whether this studio made it, unchanged or changed after download
    (docs/content-credentials.md). Its owner and staff see which image; staff its lineage."""
    if request.method == "GET":
        return render(request, "generation/verify.html")
    upload = request.FILES.get("file")
    if upload is None:
        return _verify_error(request, "Choose a file to verify.")
    if (upload.size or 0) > provenance.MAX_BYTES:
        return _verify_error(request, f"{upload.name} is over {bytes_label(provenance.MAX_BYTES)}.")
    try:
        finding = provenance.verify(upload.read())
    except UploadError as exc:
        return _verify_error(request, f"{upload.name}: {exc}.")
    image = finding.image if finding.image and provenance.may_see(request.user, finding.image) else None
    hidden = finding.image is not None and image is None  # made here, but not this user's to see
    context: dict[str, Any] = {"finding": finding, "name": upload.name, "image": image, "hidden": hidden}
    if image is not None and is_reviewer(request.user):  # staff and reviewers judge where a file came from
        context["lineage"] = provenance.lineage(image)
    return render(request, "generation/verify.html", context)


def _verify_error(request: Request, message: str) -> HttpResponse:
    return render(request, "generation/verify.html", {"error": message}, status=422)
