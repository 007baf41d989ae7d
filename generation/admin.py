import re
from contextvars import ContextVar
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from simple_history.admin import SimpleHistoryAdmin

from . import model_files, ops
from .engine.families import FAMILIES, has_img2img
from .engine.options import describe
from .forms import StorableModelForm
from .jobs import lifecycle
from .json_fields import JSONValueField
from .models import (
    AddOn,
    AssetPreset,
    BrandKit,
    BrandLora,
    BrandReference,
    GeneratedImage,
    GenerationJob,
    ImageModel,
    LibraryColour,
    PresetLora,
    Submission,
    Tag,
    Upscaler,
)
from .review import services as review_services


class StudioAdmin(SimpleHistoryAdmin):
    """Every admin page's forms take only text the database can hold (see StorableMixin),
    the list page's inline edits included (Django builds those from a plain ModelForm).

    An audited model's History page (its `history = HistoricalRecords()`, see ops.py) is the
    audit trail's: who, when and what changed, field by field, read-only; the others keep
    Django's own History page."""

    form = StorableModelForm
    formfield_overrides = {models.JSONField: {"form_class": JSONValueField}}

    def __init__(self, model: type[models.Model], admin_site: admin.AdminSite) -> None:
        super().__init__(model, admin_site)
        if not ops.is_audited(model):
            self.object_history_template = None  # Django's template, for Django's history view below

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> type[forms.ModelForm]:
        return super().get_changelist_form(request, **{"form": self.form, **kwargs})

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        if not ops.is_audited(self.model):
            return admin.ModelAdmin.history_view(self, request, object_id, extra_context)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        """A past version, read-only: simple-history's form would save whatever is posted to it,
        bypassing the inlines; changes go through the change form, where they are recorded."""
        if not ops.is_audited(self.model):
            raise Http404
        if request.method != "GET":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True  # no Revert button: see history_form_view

    def get_historical_record_context_helper(self, request: HttpRequest, record: Any) -> ops.ChangeWording:
        return ops.ChangeWording(self.model, record)


class StudioInline(admin.TabularInline):
    form = StorableModelForm
    formfield_overrides = {models.JSONField: {"form_class": JSONValueField}}


class PresetLoraInline(StudioInline):
    model = PresetLora
    extra = 1
    autocomplete_fields = ["lora"]


class BrandReferenceInline(StudioInline):
    model = BrandReference
    extra = 1
    verbose_name_plural = "Brand references (style references for models with an IP-Adapter; at most 4)"


@admin.register(BrandLora)
class BrandLoraAdmin(StudioAdmin):
    list_display = ("name", "family", "file", "file_format", "trigger_words", "enabled")
    list_filter = ("family", "enabled")
    search_fields = ("name", "file", "trigger_words")
    readonly_fields = ("file_format", "fits", "fit_notes")


@admin.register(BrandKit)
class BrandKitAdmin(StudioAdmin):
    list_display = ("name", "slug", "version", "used_by")
    inlines = [BrandReferenceInline]
    history_list_display = ["version"]
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = [
        (None, {"fields": ["name", "slug", "description"]}),
        ("Palette", {"fields": ["palette", "background_colour", "palette_tolerance"]}),
        ("Words", {"fields": ["banned_words", "required_terms"]}),
        ("Icon canvas", {"fields": ["safe_area"]}),
    ]

    @admin.display(description="asset types")
    def used_by(self, kit: BrandKit) -> str:
        return ", ".join(kit.asset_types.values_list("name", flat=True)) or "none"


@admin.register(AssetPreset)
class AssetPresetAdmin(StudioAdmin):
    list_display = ("name", "slug", "default_size", "steps", "guidance_scale", "enabled", "position")
    inlines = [PresetLoraInline]
    # Each record's version beside its changes: a change to what it renders makes a new one.
    history_list_display = ["version"]
    list_editable = ("enabled", "position")
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "enabled", "position", "kit"]}),
        ("Prompt", {"fields": ["prompt_template", "negative_prompt", "steps", "guidance_scale", "test_prompts"]}),
        ("Sizes", {"fields": ["default_width", "default_height", "allowed_sizes"]}),
        (
            "Refiner & upscaler",
            {
                "fields": ["use_refiner", "refine_strength", "use_upscaler", "upscaler"],
                "description": "Standard renders the size asked; High upscales 2x; Ultra upscales 4x and refines.",
            },
        ),
        (
            "Brand palette",
            {
                "fields": ["correct_palette", "compliance_floor"],
                "description": "The palette, background and tolerance are the brand kit's.",
            },
        ),
        (
            "Post-processing",
            {"fields": ["sharpen_radius", "sharpen_amount", "transparent_background", "trace_svg"]},
        ),
    ]

    def save_model(self, request: HttpRequest, obj: AssetPreset, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if obj.use_refiner and (names := families_without_img2img()):
            messages.warning(request, f"Refiner: {', '.join(names)} have no img2img; their jobs skip it.")


def families_without_img2img() -> list[str]:
    """The labels of enabled models' families that cannot refine (no img2img pipeline)."""
    families = ImageModel.objects.filter(enabled=True).values_list("family", flat=True).distinct()
    # Short names ("FLUX.2 [klein]" -> "FLUX.2", "HiDream-I1" -> "HiDream"): the family, not a release.
    skip = [str(FAMILIES[f]["label"]) for f in families if f in FAMILIES and not has_img2img(f)]
    return sorted({re.split(r" \[|-", label)[0] for label in skip})


@admin.register(ImageModel)
class ImageModelAdmin(StudioAdmin):
    list_display = ("name", "key", "family", "source", "license_name", "commercial_use", "enabled", "position")
    list_editable = ("enabled", "position")
    list_filter = ("family", "commercial_use", "enabled")
    prepopulated_fields = {"key": ("name",)}
    readonly_fields = ("size_limits", "memory_plans")
    fieldsets = [
        (None, {"fields": ["name", "key", "family", "enabled", "position"]}),
        ("Weights", {"fields": ["repo_id", "revision", "local_path"]}),
        (
            "Memory",
            {
                "fields": ["memory_plans"],
                "description": "How the workers' cards (STUDIO_WORKER_CARDS) hold this model, worked out "
                "from its configs and weight headers; the `memory` loading option overrides it per component.",
            },
        ),
        ("License", {"fields": ["license_name", "commercial_use", "license_notice", "license_url"]}),
        ("Defaults", {"fields": ["default_steps", "default_guidance", "max_side", "size_limits"]}),
        ("Loading options", {"fields": ["options"], "description": f"A JSON object. Known options: {describe()}."}),
        ("Capabilities", {"fields": ["supports_img2img"]}),
        ("For designers", {"fields": ["for_testing", "subjects"]}),
    ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        token = _asked_card.set(request.GET.get("card", "")[:20])  # ?card=20: the plan for a 20 GB card too
        try:
            response = super().change_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render"):  # a TemplateResponse renders later, after the reset below
                response.render()
            return response
        finally:
            _asked_card.reset(token)

    @admin.display(description="Plans")
    def memory_plans(self, obj: ImageModel | None) -> SafeString | str:
        if obj is None or obj.pk is None:
            return "Saved entries show their plan here, once their weights are on this machine."
        cards = ",".join(filter(None, [settings.STUDIO_WORKER_CARDS, _asked_card.get()]))
        lines = format_html_join("", "{}<br>", ((line,) for line in model_files.memory_plans(obj, cards)))
        others = format_html_join(" ", '<a href="?card={}">{}</a>', ((c, c) for c in OTHER_CARDS))
        return format_html("{}<small>Another card: {} (or ?card=GB in the address)</small>", lines, others)


# The plan for another card than the workers', asked for on the model's admin page.
_asked_card: ContextVar[str] = ContextVar("asked_card", default="")
OTHER_CARDS = ("12", "16", "20", "24", "32", "48", "l4", "a100-40", "h100")


@admin.register(AddOn)
class AddOnAdmin(StudioAdmin):
    list_display = ("name", "key", "kind", "control_type", "family", "license_name", "commercial_use", "enabled")
    list_editable = ("enabled",)
    list_filter = ("kind", "family", "commercial_use", "enabled")
    search_fields = ("name", "key", "local_path")
    prepopulated_fields = {"key": ("name",)}
    fieldsets = [
        (None, {"fields": ["name", "key", "kind", "control_type", "family", "enabled", "for_testing"]}),
        ("Weights", {"fields": ["local_path", "weight_name"]}),
        ("License", {"fields": ["license_name", "commercial_use", "license_notice"]}),
    ]


@admin.register(Upscaler)
class UpscalerAdmin(StudioAdmin):
    list_display = ("name", "key", "scale", "architecture", "license_name", "commercial_use", "enabled")
    list_editable = ("enabled",)
    list_filter = ("scale", "architecture", "commercial_use", "enabled")
    search_fields = ("name", "key", "file")
    prepopulated_fields = {"key": ("name",)}
    readonly_fields = ("scale", "architecture", "supports_half")
    fieldsets = [
        (None, {"fields": ["name", "key", "enabled"]}),
        (
            "File",
            {
                "fields": ["file", "scale", "architecture", "supports_half"],
                "description": "A .pth or .safetensors file inside the upscalers folder (STUDIO_UPSCALERS_DIR) "
                "on the workers, e.g. 4x-UltraSharp.safetensors; scale and architecture are read from it on save.",
            },
        ),
        ("License", {"fields": ["license_name", "commercial_use", "license_notice"]}),
    ]


class GeneratedImageInline(StudioInline):
    model = GeneratedImage
    extra = 0
    readonly_fields = ("index", "seed", "file", "thumbnail", "width", "height", "created_at")
    can_delete = False


@admin.register(GenerationJob)
class GenerationJobAdmin(StudioAdmin):
    list_display = ("created_at", "owner", "preset", "model_key", "status", "images_done", "images_total", "worker")
    list_filter = ("status", "preset", "model_key")
    search_fields = ("prompt", "owner__username")
    readonly_fields = [f.name for f in GenerationJob._meta.fields]
    inlines = [GeneratedImageInline]
    actions = ["cancel_jobs"]

    @admin.action(description="Cancel the selected jobs (queued ones never start, running ones stop)")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[GenerationJob]) -> None:
        running = [job for job in queryset if not job.is_ended]
        for job in running:
            lifecycle.job_cancel(job=job)
        self.message_user(request, f"Cancelled {len(running)} job(s).", messages.SUCCESS)


# --- review and the Brand Library (generation/review/): decisions are made on the Review page,
# which keeps its rules (nobody their own, never an unlicensed model); here staff correct the
# words, the tags and retirement, each change on the audit trail.


class LibraryColourInline(StudioInline):
    model = LibraryColour
    extra = 0
    can_delete = False
    readonly_fields = ("hex", "share", "lab_l", "lab_a", "lab_b")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Submission)
class SubmissionAdmin(StudioAdmin):
    list_display = ("submitted_at", "submitted_by", "__str__", "status", "reviewer", "decided_at", "retired_at")
    list_filter = ("status", ("retired_at", admin.EmptyFieldListFilter))
    search_fields = ("image__job__prompt", "submitted_by__username", "reviewer__username", "note", "comment")
    readonly_fields = ("image", "submitted_by", "submitted_at", "status", "reviewer", "decided_at", "retired_by")
    fields = [
        *readonly_fields[:3],
        "note",
        "tags",
        "status",
        "reviewer",
        "decided_at",
        "comment",
        "retired_at",
        "retired_by",
    ]
    filter_horizontal = ("tags",)
    inlines = [LibraryColourInline]
    actions = ["retire_items"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # designers submit from their images' pages

    @admin.action(description="Retire the selected items from the Brand Library")
    def retire_items(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        retired = 0
        for item in queryset.filter(status="approved", retired_at__isnull=True):
            review_services.library_retire(user=request.user, item=item)
            retired += 1
        self.message_user(request, f"Retired {retired} item(s).", messages.SUCCESS)


@admin.register(Tag)
class TagAdmin(StudioAdmin):
    search_fields = ("name",)
