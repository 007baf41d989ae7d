"""Staff pages for brand training: sets, uploads, captions, the report, runs and versions."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from ..engine.families import family_choices
from ..forms import StorableForm, StorableModelForm
from ..http import Request
from ..jobs.limits import QuotaExceeded
from ..memory.training import TrainingPlan
from ..models import AddOn, AssetPreset, BrandLora, ImageModel, TrainingImage, TrainingRun, TrainingSet
from ..models.training import CaptionSource
from . import data as training_data
from . import services as training_services
from .captions.addon import captioners
from .captions.progress import progress_of
from .captions.terms import EXAMPLE, TermsError, format_terms, parse_terms, stored_rules
from .captions.wording import wording_of
from .defaults import FAMILY_DEFAULTS, training_defaults
from .plans import run_plan
from .services import TrainingError


class TrainingSetForm(StorableModelForm):
    class Meta:
        model = TrainingSet
        fields = ["name", "preset", "family", "trigger_word"]
        labels = {"preset": "Asset type", "family": "Model family"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["family"]
        assert isinstance(field, forms.ChoiceField)
        # Only the families the studio trains, each with the models its LoRAs will fit: a LoRA
        # trained on FLUX.2 [klein] 4B fits klein 4B, not Z-Image nor klein 9B.
        field.choices = [("", "---------")] + [
            (value, f"{label} ({_fits(value)})") for value, label in family_choices() if value in FAMILY_DEFAULTS
        ]


def _fits(family: str) -> str:
    names = list(ImageModel.objects.filter(family=family, enabled=True).values_list("name", flat=True))
    return f"LoRAs for {', '.join(names)}" if names else "no model of this family enabled yet"


class TrainingImageForm(StorableForm):
    """One tile's edit: a new caption, or exclude / include (each post carries one of them)."""

    caption = forms.CharField(
        required=False, max_length=2000, error_messages={"max_length": "Keep the caption under 2000 characters."}
    )
    excluded = forms.TypedChoiceField(
        choices=[("0", "Include"), ("1", "Exclude")], coerce=lambda v: v == "1", required=False
    )
    # "Approve": the captioner's caption, read and kept as it is.
    reviewed = forms.BooleanField(required=False)


class TerminologyForm(StorableForm):
    """The set's terms for the captioner, one a line: the preferred term, then the words it replaces."""

    terminology = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": EXAMPLE}),
        error_messages={"max_length": "Keep the terms under 5000 characters."},
    )

    def clean_terminology(self) -> dict[str, list[str]]:
        try:
            return parse_terms(self.cleaned_data["terminology"])
        except TermsError as exc:
            raise forms.ValidationError(str(exc)) from None


class CaptionerChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.license_name})"


class CaptionsForm(StorableForm):
    captioner = CaptionerChoice(
        queryset=AddOn.objects.none(),
        empty_label=None,
        error_messages={"invalid_choice": "Choose one of the captioners listed.", "required": "Choose a captioner."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["captioner"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = captioners()


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


ADVANCED = (
    "rank",
    "learning_rate",
    "steps",
    "resolution",
    "batch_size",
    "caption_dropout",
    "prior_images",
    "prior_weight",
    "sample_every",
)


class RunForm(StorableForm):
    model = forms.ModelChoiceField(queryset=ImageModel.objects.none(), empty_label=None, label="Base model")
    rank = forms.IntegerField(required=False, min_value=1, max_value=256)
    learning_rate = forms.FloatField(required=False, min_value=1e-7, max_value=1e-1)
    steps = forms.IntegerField(required=False, min_value=1, max_value=100_000)
    resolution = forms.IntegerField(required=False, min_value=16, max_value=2048)
    batch_size = forms.IntegerField(required=False, min_value=1, max_value=64)
    caption_dropout = forms.FloatField(required=False, min_value=0, max_value=1)
    prior_images = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=200,
        help_text="Prior preservation: the base model's own drawings of the asset type's test prompts, "
        "trained on beside the set so the LoRA keeps what the base draws well (its colours). 0: none.",
    )
    prior_weight = forms.FloatField(required=False, min_value=0, max_value=10, help_text="Their share of the loss.")
    sample_every = forms.IntegerField(required=False, min_value=1)

    def __init__(self, *args: Any, training_set: TrainingSet, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["model"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = ImageModel.objects.filter(family=training_set.family, enabled=True)
        field.help_text = "The LoRA is trained on this model and fits it (and models of the same architecture) only."
        # Blank fields take the defaults: show them (for the first model; a model with a native size
        # has its own, which the run page then shows), as placeholders, so they stay defaults.
        model = field.queryset.first()
        self.defaults_for = ""
        self.plan: TrainingPlan | None = None
        if model is not None and model.family in FAMILY_DEFAULTS:
            defaults = training_defaults(training_set, model)
            self.defaults_for = model.name
            self.plan = run_plan(model, defaults)  # shown before Start: the card, the peak, the savers
            for name in ADVANCED:
                self.fields[name].widget.attrs["placeholder"] = f"{defaults[name]:g}" if name in defaults else ""


@staff_member_required
def training_home(request: Request) -> HttpResponse:
    form = TrainingSetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        training_set = form.save(commit=False)
        training_set.created_by = request.user
        training_set.save()
        return redirect(training_set)
    presets = AssetPreset.objects.prefetch_related("trained_loras")
    versions = [(preset, list(preset.trained_loras.order_by("-version")), _published(preset)) for preset in presets]
    context = {
        "form": form,
        "sets": TrainingSet.objects.select_related("preset"),
        "runs": TrainingRun.objects.select_related("training_set")[:20],
        "versions": [v for v in versions if v[1]],
    }
    return render(request, "generation/training.html", context, status=422 if form.errors else 200)


def _published(preset: AssetPreset) -> set[int]:
    return set(preset.preset_loras.filter(lora__preset=preset).values_list("lora_id", flat=True))


@staff_member_required
def training_set(request: Request, pk: int) -> HttpResponse:
    training_set = get_object_or_404(TrainingSet.objects.select_related("preset"), pk=pk)
    run_form = RunForm(training_set=training_set)
    terms_form = TerminologyForm(initial={"terminology": format_terms(stored_rules(training_set.terminology))})
    if request.method == "POST" and "files" in request.FILES:
        result = training_data.add_uploads(training_set, request.FILES.getlist("files"))
        messages.success(request, f"Added {len(result.added)} image(s).")
        for name, reason in result.rejected:
            messages.error(request, f"{name}: {reason}")
        return redirect(training_set)
    if request.method == "POST" and "terminology" in request.POST:
        terms_form = TerminologyForm(request.POST)
        if terms_form.is_valid():
            training_set.terminology = terms_form.cleaned_data["terminology"]
            training_set.save(update_fields=["terminology"])  # never the captioner's progress beside it
            messages.success(request, "Saved the terms: the captioner uses them from its next pass.")
            return redirect(training_set)
    elif request.method == "POST":
        run_form = RunForm(request.POST, training_set=training_set)
        if run_form.is_valid():
            data = dict(run_form.cleaned_data)
            model = data.pop("model")
            try:
                run = training_services.run_create(
                    training_set=training_set,
                    model=model,
                    user=request.user,
                    overrides=data,
                )
            except TrainingError as exc:
                run_form.add_error(None, str(exc))
            else:
                return redirect(run)
    report = training_data.report(training_set)
    flagged = {pk for check in report.checks for finding in check.findings for pk in finding.images}
    to_review = training_set.images.filter(caption_source=CaptionSource.CAPTIONER, caption_reviewed=False)
    to_review = to_review.exclude(caption="")
    unreviewed = request.GET.get("captions") == "unreviewed"
    page = Paginator(to_review if unreviewed else training_set.images.all(), SET_PAGE).get_page(request.GET.get("page"))
    context = {
        "set": training_set,
        "images": page,
        "page": page,
        "unreviewed": unreviewed,
        "to_review": to_review.count(),
        "report": report,
        "flagged": flagged,
        "run_form": run_form,
        "runs": training_set.runs.all()[:10],
        "terms_form": terms_form,
        "wording": wording_of(training_set),
        "captions_form": CaptionsForm(),
        "captions": progress_of(training_set),
    }
    status = 422 if run_form.errors or terms_form.errors else 200
    return render(request, "generation/training_set.html", context, status=status)


SET_PAGE = 120  # images a training set's page shows at once; the report covers them all


@require_POST
@staff_member_required
def training_image(request: Request, pk: int) -> HttpResponse:
    """Edit one caption, or exclude / include the image (htmx swaps the tile back)."""
    image = get_object_or_404(TrainingImage, pk=pk)
    form = TrainingImageForm(request.POST)
    if form.is_valid():
        edits = {name: form.cleaned_data[name] for name in ("caption", "excluded") if name in request.POST}
        if "caption" in edits:  # a person wrote or read it: the captioner's mark and any failure go
            if edits["caption"] != image.caption:
                edits["caption_source"] = CaptionSource.HUMAN
            edits |= {"caption_reviewed": True, "caption_error": ""}
        if form.cleaned_data["reviewed"]:
            edits["caption_reviewed"] = True
        for name, value in edits.items():
            setattr(image, name, value)
        image.save(update_fields=list(edits))
    error = " ".join(str(text) for texts in form.errors.values() for text in texts)
    if not request.htmx:
        if error:
            messages.error(request, f"{image.original_name}: {error}")
        return redirect(image.training_set)
    context = {"image": image, "flagged": set(), "error": error}
    return render(request, "generation/training_set.html#image-tile", context, status=422 if error else 200)


@require_http_methods(["GET", "POST"])
@staff_member_required
def training_captions(request: Request, pk: int) -> HttpResponse:
    """Start or stop the captioner on the set (a form post), or its progress (polled by htmx)."""
    training_set = get_object_or_404(TrainingSet.objects.select_related("preset"), pk=pk)
    if request.method == "POST":
        _start_or_stop_captions(request, training_set)
        return redirect(f"{training_set.get_absolute_url()}#captions")
    captions = progress_of(training_set)
    response = render(
        request, "generation/training_set.html#caption-progress", {"set": training_set, "captions": captions}
    )
    if request.htmx and (captions is None or not captions.active):
        response.status_code = HttpResponseStopPolling.status_code
        response["HX-Refresh"] = "true"  # the pass ended: the page shows its captions and marks
    return response


def _start_or_stop_captions(request: Request, training_set: TrainingSet) -> None:
    if request.POST.get("action") == "stop":
        training_services.captions_stop(training_set=training_set)
        messages.success(request, "Stopped the captioner; the captions it wrote stay.")
        return
    form = CaptionsForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(text) for texts in form.errors.values() for text in texts))
        return
    captioner = form.cleaned_data["captioner"]
    try:
        count = training_services.captions_start(training_set=training_set, captioner=captioner, user=request.user)
    except TrainingError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{captioner.name} is writing {count} missing caption(s); review each when done.")


@require_GET
@staff_member_required
def training_file(request: Request, path: str) -> FileResponse:
    """Training images and samples, from storage (staff only; nothing outside training/)."""
    if not path.startswith("training/") or ".." in path.split("/") or not default_storage.exists(path):
        raise Http404("No such training file.")
    return FileResponse(default_storage.open(path, "rb"))


@staff_member_required
def training_run(request: Request, pk: UUID) -> HttpResponse:
    run = get_object_or_404(TrainingRun.objects.select_related("training_set__preset", "lora"), pk=pk)
    context = {"run": run, "plot": loss_plot(run.losses)}
    if request.htmx:
        response = render(request, "generation/training_run.html#run-body", context)
        if run.is_ended:
            response.status_code = HttpResponseStopPolling.status_code
        return response
    return render(request, "generation/training_run.html", context)


@require_POST
@staff_member_required
def training_run_action(request: Request, pk: UUID, action: str) -> HttpResponse:
    run = get_object_or_404(TrainingRun, pk=pk)
    if action == "cancel":
        training_services.run_cancel(run=run)
    elif action == "resume":
        training_services.run_resume(run=run)
    else:
        raise Http404("Unknown action.")
    return redirect(run)


@require_POST
@staff_member_required
def lora_action(request: Request, pk: int, action: str) -> HttpResponse:
    lora = get_object_or_404(BrandLora.objects.select_related("preset"), pk=pk)
    try:
        if action == "publish":
            training_services.lora_publish(lora=lora)
            messages.success(request, f"{lora.name} is now what {lora.preset} uses.")
        elif action == "compare":
            run = getattr(lora, "training_run", None)
            key = run.model_key if run else None
            model = ImageModel.objects.filter(key=key).first() or ImageModel.objects.filter(family=lora.family).first()
            if model is None:
                raise TrainingError(f"No {lora.get_family_display()} model to render with.")
            group = training_services.lora_compare(lora=lora, owner=request.user, model=model)
            return redirect(group)
        else:
            raise Http404("Unknown action.")
    except (TrainingError, QuotaExceeded) as exc:
        messages.error(request, str(exc))
    return redirect("training")


def loss_plot(losses: list[list[float]], width: int = 560, height: int = 160) -> dict[str, Any] | None:
    """An SVG polyline of the loss (server-drawn: no charting library, no JavaScript)."""
    if len(losses) < 2:
        return None
    steps = [s for s, _ in losses]
    values = [v for _, v in losses]
    low, high = min(values), max(values)
    span_x, span_y = (steps[-1] - steps[0]) or 1, (high - low) or 1
    points = " ".join(
        f"{(s - steps[0]) / span_x * width:.1f},{height - (v - low) / span_y * height:.1f}" for s, v in losses
    )
    return {"points": points, "width": width, "height": height, "low": low, "high": high, "last": values[-1]}
