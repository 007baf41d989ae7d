"""Review's pages: Submit for review (from any page's selection), My submissions, the reviewers'
queue and each submission with its lineage and decision, the Brand Library and its items."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ..auth import is_reviewer
from ..forms import StorableForm, search_text
from ..http import Request, thumbnail_response
from ..lineage import image_lineage
from ..models import AssetPreset, GeneratedImage, Submission, Tag
from . import selectors, services
from .files import FORMATS, image_file_response
from .services import ReviewRefused

PAGE = 24


class SubmitForm(StorableForm):
    note = forms.CharField(
        required=False,
        max_length=services.MAX_NOTE,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "What should the reviewers look at?"}),
    )
    tags = forms.CharField(
        required=False,
        max_length=500,
        help_text="Separated by commas: onboarding, q3 campaign",
        widget=forms.TextInput(attrs={"placeholder": "onboarding, q3 campaign"}),
    )


class DecisionForm(StorableForm):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("changes", "Request changes")])
    comment = forms.CharField(required=False, max_length=services.MAX_COMMENT, widget=forms.Textarea(attrs={"rows": 3}))


class LibraryForm(StorableForm):
    q = forms.CharField(required=False, max_length=200, label="Search")
    asset_type = forms.CharField(required=False, max_length=100)
    tag = forms.CharField(required=False, max_length=services.MAX_TAG_LENGTH)
    colour = forms.CharField(required=False, max_length=40, help_text="#0f6cbd, or a name: blue")
    since = forms.DateField(required=False, label="Approved from", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="to", widget=forms.DateInput(attrs={"type": "date"}))


def _refused(request: Request, exc: ReviewRefused, template: str, context: dict[str, Any]) -> HttpResponse:
    return render(request, template, {**context, "error": str(exc)}, status=exc.status)


# --- submitting


def _selected_images(request: Request, values: list[str]) -> list[GeneratedImage]:
    """The user's images among the ids; ReviewRefused when an id is not an image id (400) or not theirs (404)."""
    try:
        ids = {UUID(value) for value in values}
    except ValueError:
        raise ReviewRefused("The selection holds an id that is not an image id.", status=400) from None
    if len(ids) > services.MAX_IMAGES:
        raise ReviewRefused(f"Submit at most {services.MAX_IMAGES} images at once.", status=400)
    images = list(
        GeneratedImage.objects.filter(pk__in=ids, job__owner=request.user)
        .select_related("job__preset")
        .order_by("job__created_at", "index")
    )
    if len(images) != len(ids):
        raise ReviewRefused("Some of the selected images do not exist or are not yours.", status=404)
    return images


@require_http_methods(["GET", "POST"])
@login_required
def review_submit(request: Request) -> HttpResponse:
    """The selection (ticked images of any page, ?id=...) with a note and tags, then submitted."""
    source = request.POST if request.method == "POST" else request.GET
    if not source.getlist("id"):
        messages.error(request, "Tick the images to submit for review first.")
        return redirect(request.headers.get("Referer") or "history")
    context: dict[str, Any] = {"images": [], "form": SubmitForm(request.POST or None)}
    try:
        context["images"] = images = _selected_images(request, source.getlist("id"))
        if request.method == "GET" or not context["form"].is_valid():
            status = 200 if request.method == "GET" else 422
            return render(request, "generation/review/submit.html", context, status=status)
        data = context["form"].cleaned_data
        made = services.submission_create(user=request.user, images=images, note=data["note"], tags=data["tags"])
    except ReviewRefused as exc:
        return _refused(request, exc, "generation/review/submit.html", context)
    count = f"{len(made)} image{'s' if len(made) != 1 else ''}"
    messages.success(request, f"Submitted {count} for review. You will see the decision here and on each image.")
    return redirect("my-submissions")


@require_GET
@login_required
def my_submissions(request: Request) -> HttpResponse:
    page = Paginator(selectors.my_submissions(request.user), PAGE).get_page(request.GET.get("page"))
    return render(request, "generation/review/mine.html", {"page": page})


# --- reviewing


@require_GET
@login_required
def review_queue(request: Request) -> HttpResponse:
    if not is_reviewer(request.user):
        context = {"error": "Only reviewers see the review queue: ask an admin to add you to the reviewers."}
        return render(request, "generation/review/queue.html", context, status=403)
    page = Paginator(selectors.review_queue(request.user), PAGE).get_page(request.GET.get("page"))
    return render(request, "generation/review/queue.html", {"page": page})


def _submission_context(request: Request, submission: Submission) -> dict[str, Any]:
    image = submission.image
    context: dict[str, Any] = {"submission": submission, "image": image, "job": image.job, **image_lineage(image)}
    context["may_decide"] = is_reviewer(request.user) and submission.submitted_by_id != request.user.pk
    context["own"] = submission.submitted_by_id == request.user.pk
    try:
        services.check_decidable(submission, approve=True)
    except ReviewRefused as exc:
        context["no_approval"] = str(exc)
    return context


@require_GET
@login_required
def submission(request: Request, pk: UUID) -> HttpResponse:
    found = selectors.submission_for(request.user, pk)
    context = _submission_context(request, found) | {"form": DecisionForm()}
    return render(request, "generation/review/submission.html", context)


@require_POST
@login_required
def submission_decide(request: Request, pk: UUID) -> HttpResponse:
    """Approve or request changes, with a comment; htmx gets the decision box back."""
    found = selectors.submission_for(request.user, pk)
    form = DecisionForm(request.POST)
    template = "generation/review/submission.html#decision" if request.htmx else "generation/review/submission.html"
    if not form.is_valid():
        return render(request, template, _submission_context(request, found) | {"form": form}, status=422)
    try:
        decided = services.submission_decide(
            reviewer=request.user,
            submission=found,
            approve=form.cleaned_data["decision"] == "approve",
            comment=form.cleaned_data["comment"],
        )
    except ReviewRefused as exc:
        context = _submission_context(request, found) | {"form": form, "error": str(exc)}
        return render(request, template, context, status=exc.status)
    if request.htmx:
        decided = selectors.submission_for(request.user, pk)
        return render(request, template, _submission_context(request, decided) | {"form": DecisionForm()})
    messages.success(request, f"{decided.state_label}: {decided.image.job.prompt[:60]}. The designer is told.")
    return redirect("review-queue")


def _file(request: Request, item: Submission) -> HttpResponse | FileResponse:
    fmt = request.GET.get("format", "png")
    if fmt not in FORMATS:
        return HttpResponse("format is png, webp or svg.", status=400, content_type="text/plain")
    return image_file_response(item.image, fmt, download=request.GET.get("download") == "1")


@require_GET
@login_required
def submission_file(request: Request, pk: UUID) -> HttpResponse | FileResponse:
    return _file(request, selectors.submission_for(request.user, pk))


@require_GET
@login_required
def submission_thumbnail(request: Request, pk: UUID) -> FileResponse:
    return thumbnail_response(selectors.submission_for(request.user, pk).image)


# --- the Brand Library


@require_GET
@login_required
def library(request: Request) -> HttpResponse:
    form = LibraryForm(request.GET)
    items, error = Submission.objects.none(), ""
    if form.is_valid():
        data = form.cleaned_data
        texts = {key: search_text(data[key]) for key in ("q", "asset_type", "tag", "colour")}
        try:
            search = selectors.LibrarySearch(**texts, since=data["since"], until=data["until"])
            items = selectors.library_search(request.user, search)
        except selectors.BadSearch as exc:
            error = str(exc)
    page = Paginator(items, PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "error": error,
        "presets": AssetPreset.objects.filter(jobs__images__submissions__status="approved").distinct(),
        "tags": Tag.objects.filter(submissions__status="approved").distinct()[:200],
        "query": query.urlencode(),
    }
    return render(request, "generation/review/library.html", context, status=422 if error or form.errors else 200)


@require_GET
@login_required
def library_item(request: Request, pk: UUID) -> HttpResponse:
    return _library_item_page(request, selectors.library_item_for(request.user, pk))


def _library_item_page(request: Request, item: Submission, *, error: str = "", status: int = 200) -> HttpResponse:
    context = {"item": item, "submission": item, "image": item.image, "job": item.image.job, "error": error}
    return render(request, "generation/review/library_item.html", context | image_lineage(item.image), status=status)


@require_GET
@login_required
def library_file(request: Request, pk: UUID) -> HttpResponse | FileResponse:
    return _file(request, selectors.library_item_for(request.user, pk))


@require_GET
@login_required
def library_thumbnail(request: Request, pk: UUID) -> FileResponse:
    return thumbnail_response(selectors.library_item_for(request.user, pk).image)


@require_POST
@staff_member_required
def library_retire(request: Request, pk: UUID) -> HttpResponse:
    item = selectors.library_item_for(request.user, pk)
    try:
        services.library_retire(user=request.user, item=item)
    except ReviewRefused as exc:
        return _library_item_page(request, item, error=str(exc), status=exc.status)
    messages.success(request, "Retired: it is out of the Brand Library, and marked retired in its lineage.")
    return redirect(reverse("library-item", args=[pk]))
