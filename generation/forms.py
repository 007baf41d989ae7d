import copy
import csv
import io
import uuid
from collections.abc import Iterator
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.files.uploadedfile import UploadedFile
from django.forms.models import ModelChoiceIterator
from django.forms.utils import ErrorDict

from .auth import models_for
from .control.addons import any_takes_references, control_types, reference_problem
from .control.inputs import from_studio_image, owned_input, store_upload
from .control.sketch import CONTROL_MODES, FOLLOW_LABELS, MODES, sketch_problem
from .finishing.planner import check_output_side, tier_notes
from .jobs.recipe import MAX_SEED, banned_problem
from .models import QUALITY, AssetPreset, GeneratedImage, ImageModel, InputImage, Quality
from .storable import MESSAGE as UNSTORABLE
from .storable import search_text, storable
from .uploads import UploadError

__all__ = ["search_text"]  # the pages' and the API's query filters


class StorableMixin(forms.BaseForm):
    """Every form of the project (pages, admin) takes only text the database can hold.

    The submitted values are checked before any field sees them: a field that looks a value
    up (a model choice) would otherwise send Postgres a NUL and fail with a 500. The cleaned
    values are checked after, for what a field builds from the text (JSON from a textarea).
    """

    def full_clean(self) -> None:
        refused = [name for name, field in self.fields.items() if not field.disabled and not storable(self[name].data)]
        if self.is_bound and refused:
            self._errors, self.cleaned_data = ErrorDict(), {}
            for name in refused:
                self.add_error(name, _unstorable())
            return
        super().full_clean()
        self._refuse_unstorable(outside_fields=True)  # what clean() added has no field to show the error on

    def clean(self) -> dict[str, Any]:
        # Before the model's own validation, which might refuse the same value for a vaguer reason.
        self._refuse_unstorable(outside_fields=False)
        cleaned = super().clean()
        return self.cleaned_data if cleaned is None else cleaned

    def _refuse_unstorable(self, *, outside_fields: bool) -> None:
        for name, value in list(getattr(self, "cleaned_data", {}).items()):
            if (name in self.fields) != outside_fields and not storable(value):
                self.add_error(None if outside_fields else name, _unstorable())


def _unstorable() -> forms.ValidationError:
    return forms.ValidationError(UNSTORABLE, code="unstorable")


class StorableForm(StorableMixin, forms.Form):
    pass


class StorableModelForm(StorableMixin, forms.ModelForm):
    pass


class LoginForm(StorableMixin, AuthenticationForm):
    """The sign-in page's form: a username Postgres cannot hold is a form error, not a 500."""


class TokenForm(StorableForm):
    name = forms.CharField(
        max_length=100,
        error_messages={
            "required": "Name the token after where it is used, e.g. “Figma on my laptop”.",
            "max_length": "Keep the token's name under 100 characters.",
        },
    )


NOT_YOUR_TOKEN = "That is not one of your tokens (it may be revoked already)."


class TokenRevokeForm(StorableForm):
    revoke = forms.IntegerField(
        min_value=1,
        max_value=2**63 - 1,  # the id column is a bigint: a larger number is not any token's
        error_messages=dict.fromkeys(("required", "invalid", "min_value", "max_value"), NOT_YOUR_TOKEN),
    )


class FetchedOnceIterator(ModelChoiceIterator):
    """Choices from the field's queryset as fetched the first time. Django's iterator queries
    again on every loop, and the studio form loops over its models three times a page (the
    radios, the license notes, which of them take references)."""

    def __iter__(self) -> Iterator[Any]:
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset:  # the queryset's own result cache
            yield self.choice(obj)

    def __len__(self) -> int:
        return len(self.queryset) + (1 if self.field.empty_label is not None else 0)


class NamedChoiceField(forms.ModelChoiceField):
    iterator = FetchedOnceIterator

    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)


class NamedMultipleChoiceField(forms.ModelMultipleChoiceField):
    iterator = FetchedOnceIterator

    def label_from_instance(self, obj: AssetPreset | ImageModel) -> str:
        return obj.name


def prompt_field(**kwargs: Any) -> forms.CharField:
    return forms.CharField(
        label="Describe what you need",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "a clipboard with three checkmarks"}),
        error_messages={
            "required": "Describe what you need.",
            "max_length": "Keep the description under 1000 characters (it has %(show_value)d).",
        },
        **kwargs,
    )


MAX_REFERENCES = 4


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files under one name (Django's documented recipe): a list, empty when none."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> Any:
        one = super().clean
        if isinstance(data, list | tuple):
            return [one(item, initial) for item in data if item]
        return [one(data, initial)] if data else []


class GenerateForm(StorableForm):
    preset = NamedChoiceField(
        queryset=AssetPreset.objects.filter(enabled=True),
        to_field_name="slug",
        empty_label=None,
        widget=forms.RadioSelect,
        label="Asset type",
        error_messages={"invalid_choice": "Pick one of the available asset types."},
    )
    prompt = prompt_field()
    model = NamedChoiceField(
        queryset=ImageModel.objects.filter(enabled=True),
        to_field_name="key",
        empty_label=None,
        required=False,  # the studio's default model
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Pick one of the available models."},
    )
    quality = forms.ChoiceField(choices=Quality.choices, initial=Quality.STANDARD, widget=forms.RadioSelect)
    variations = forms.IntegerField(
        min_value=1,
        max_value=settings.STUDIO_MAX_VARIATIONS,
        initial=4,
        widget=forms.NumberInput(attrs={"class": "narrow"}),
    )
    size = forms.CharField(required=False, widget=forms.Select, help_text="Default: the asset type's size")
    seed = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_SEED - settings.STUDIO_MAX_VARIATIONS,
        help_text="Optional: the same seed and settings give the same images.",
    )

    brand_lora = forms.ChoiceField(
        required=False,
        label="Brand LoRA",
        help_text="Try another trained version of the asset type's LoRA, or none.",
    )
    # A sketch to start from (generation/control/): uploaded here, or named by id: one the
    # designer sent before (Reuse settings, a form shown again, the API), or a studio image.
    sketch = forms.FileField(
        required=False,
        label="Sketch or layout",
        help_text="Optional: a PNG, JPEG or WebP drawing to start from; the description says what it is.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
    )
    sketch_input = forms.CharField(required=False, max_length=36, widget=forms.HiddenInput)
    sketch_image = forms.CharField(required=False, max_length=36, widget=forms.HiddenInput)
    sketch_clear = forms.BooleanField(required=False, label="No sketch")
    sketch_mode = forms.ChoiceField(
        choices=list(MODES.items()), initial="drawing", required=False, label="Start from", widget=forms.RadioSelect
    )
    sketch_follow = forms.ChoiceField(
        choices=list(FOLLOW_LABELS.items()),
        initial="close",
        required=False,
        label="How closely",
        widget=forms.RadioSelect,
    )

    # Style references (an IP-Adapter add-on, or the model's own input): uploaded here, or named by id as sketches are.
    references = MultipleFileField(
        required=False,
        label="Style references",
        help_text=f"Optional: up to {MAX_REFERENCES} images whose look the results should share.",
    )
    reference_inputs = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)
    reference_images = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)
    brand_references_off = forms.BooleanField(
        required=False,
        label="Without the asset type's brand references",
        help_text="Where an asset type has brand references and the model takes them, jobs follow them by default.",
    )
    reference_strength = forms.FloatField(
        required=False,
        min_value=0.05,
        max_value=1.0,
        initial=0.6,
        label="How strongly",
        help_text="Through an IP-Adapter; FLUX.2 [klein] follows its references as given.",
        widget=forms.NumberInput(attrs={"step": "0.05", "class": "narrow"}),
    )

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        limit_models(self, user)
        # The ControlNet modes shown only where some add-on follows them; any mode is accepted, and
        # clean() says why the chosen model cannot follow one (naming those that can).
        offered = control_types()
        mode = self.fields["sketch_mode"]
        shown = [(key, label) for key, label in MODES.items() if key not in CONTROL_MODES or key in offered]
        mode.widget.choices = shown
        preset = self._selected_preset()
        choices = [("", f"Default ({preset.default_size})")] if preset else [("", "Default")]
        choices += [(size, size) for size in (preset.size_choices if preset else [])]
        self.fields["size"].widget.choices = choices
        versions = preset.trained_loras.filter(enabled=True).order_by("-version") if preset else []
        field = self.fields["brand_lora"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "The asset type's published version"), ("none", "None")]
        field.choices += [(str(lora.pk), f"{lora.name} ({lora.get_family_display()})") for lora in versions]
        if not self.is_bound:  # a fresh form starts on the first asset type and the default model
            self.initial["preset"] = self.initial.get("preset") or (preset.slug if preset else None)
            self.initial.setdefault("model", settings.STUDIO_DEFAULT_MODEL)

    def job_fields(self) -> dict[str, Any]:
        """The validated form as `jobs.submit.job_create` arguments (the studio page and the API)."""
        data = self.cleaned_data
        fields = ("preset", "prompt", "model", "quality", "variations", "width", "height", "seed")
        chosen = {name: data[name] for name in fields} | {"brand_lora": data.get("brand_lora") or ""}
        chosen["brand_references"] = not data.get("brand_references_off")
        if data.get("references_chosen"):
            chosen |= {"references": data["references_chosen"], "reference_strength": data.get("reference_strength")}
        if data.get("sketch_chosen") is not None:
            chosen |= {"sketch": data["sketch_chosen"], "sketch_follow": data.get("sketch_follow") or "close"}
            chosen["sketch_mode"] = data.get("sketch_mode") or "drawing"
        return chosen

    def sketch_shown(self) -> InputImage | None:
        """The sketch this form carries (the one uploaded, or named by Reuse settings), to show."""
        if self.is_bound and hasattr(self, "cleaned_data"):
            return self.cleaned_data.get("sketch_chosen")
        return owned_input(self.user, self.initial.get("sketch_input")) if self.user else None

    def tier_notes(self) -> list[tuple[str, str]]:
        """What each quality tier does for the chosen asset type, shown next to the tiers."""
        preset = self._selected_preset()
        if preset is None:
            return []
        key = (self.data.get("model") if self.is_bound else self.initial.get("model")) or settings.STUDIO_DEFAULT_MODEL
        model = key if isinstance(key, ImageModel) else None
        if model is None and storable(key):
            model = next((m for m in self._offered("model") if m.key == key), None)
        return tier_notes(preset, model)

    def _offered(self, name: str) -> Any:
        """A choice field's queryset, fetched once for the form (its radios loop over it too)."""
        field = self.fields[name]
        assert isinstance(field, forms.ModelChoiceField)
        return field.queryset

    def _selected_preset(self) -> AssetPreset | None:
        # Asked for by the size choices, the LoRA versions and the tier notes: looked up once.
        if not hasattr(self, "_preset"):
            self._preset = self._find_preset()
        return self._preset

    def _find_preset(self) -> AssetPreset | None:
        slug = self.data.get("preset") if self.is_bound else self.initial.get("preset")
        if isinstance(slug, AssetPreset):
            return slug
        offered = list(self._offered("preset"))  # enabled, in the radios' order
        return next((p for p in offered if slug and p.slug == slug), None) or (offered[0] if offered else None)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("model") and "model" not in self.errors:
            data["model"] = ImageModel.objects.filter(key=settings.STUDIO_DEFAULT_MODEL, enabled=True).first()
            if data["model"] is None:
                self.add_error("model", "No model is available; ask an admin to enable one.")
        preset: AssetPreset | None = data.get("preset")
        if preset is None:
            return data
        if problem := banned_problem(preset, data.get("prompt") or ""):
            self.add_error("prompt", problem)
        try:
            data["width"], data["height"] = size_for(preset, data.get("model"), data.get("size"))
            if data.get("quality"):
                check_output(preset, data["quality"], data["width"], data["height"])
        except forms.ValidationError as exc:
            self.add_error("size", exc)
        self._clean_sketch(data)
        self._clean_references(data)
        model, choice = data.get("model"), data.get("brand_lora") or ""
        if choice in ("", "none") or model is None:
            return data
        if not preset.trained_loras.filter(pk=choice, family=model.family, enabled=True).exists():
            self.add_error("brand_lora", f"That LoRA version is not for {preset.name} on {model.name}.")
        return data

    def _clean_sketch(self, data: dict[str, Any]) -> None:
        """The sketch as the owner's InputImage (stored now, so a form shown again keeps it)."""
        try:
            sketch = self._chosen_sketch(data)
        except UploadError as exc:
            self.add_error("sketch", str(exc))
            return
        if sketch is not None and (problem := sketch_problem(data.get("model"), data.get("sketch_mode") or "drawing")):
            self.add_error("sketch", problem)
        data["sketch_chosen"] = sketch
        if sketch is not None:  # shown again with the form, the upload is not sent twice
            self.data = shown = copy.copy(self.data)  # a QueryDict's copy is mutable; the API's is a dict
            shown["sketch_input"] = str(sketch.pk)  # type: ignore[index]

    def offers_references(self) -> bool:
        """Whether any model this user may pick takes style references (else no field for them)."""
        return any_takes_references(self._offered("model"))

    def references_shown(self) -> list[InputImage]:
        """The references this form carries, to show (stored when the form was sent)."""
        if self.is_bound and hasattr(self, "cleaned_data"):
            return list(self.cleaned_data.get("references_chosen") or [])
        keys = str(self.initial.get("reference_inputs") or "").split(",")
        return [found for key in keys if self.user and (found := owned_input(self.user, key))]

    def _clean_references(self, data: dict[str, Any]) -> None:
        uploads = data.get("references") or []
        named = [key for key in str(data.get("reference_inputs") or "").split(",") if key]
        images = [key for key in str(data.get("reference_images") or "").split(",") if key]
        count = len(uploads) + len(named) + len(images)
        if count > MAX_REFERENCES:
            self.add_error("references", f"At most {MAX_REFERENCES} style references; there are {count}.")
            return
        if not count or self.user is None:
            data["references_chosen"] = []
            return
        try:
            chosen = [store_upload(self.user, upload) for upload in uploads]
            chosen += [self._owned(owned_input(self.user, key), "reference") for key in named]
            chosen += [
                from_studio_image(self.user, self._owned(_owned_image(self.user, key), "image")) for key in images
            ]
        except UploadError as exc:
            self.add_error("references", str(exc))
            return
        if problem := reference_problem(data.get("model")):
            self.add_error("references", problem)
        if data.get("sketch_chosen") is not None:
            self.add_error("references", "Style references go with a description alone; take the sketch off first.")
        data["references_chosen"] = chosen
        self.data = shown = copy.copy(self.data)
        shown["reference_inputs"] = ",".join(str(row.pk) for row in chosen)  # type: ignore[index]

    @staticmethod
    def _owned(found: Any, what: str) -> Any:
        if found is None:
            raise UploadError(f"That {what} is not one of yours, or no longer exists; upload it again.")
        return found

    def _chosen_sketch(self, data: dict[str, Any]) -> InputImage | None:
        if self.user is None:
            return None
        if upload := data.get("sketch"):
            try:
                return store_upload(self.user, upload)
            except UploadError as exc:
                raise UploadError(f"{upload.name}: {exc}") from None
        if data.get("sketch_clear"):
            return None
        if key := data.get("sketch_input"):
            if (found := owned_input(self.user, key)) is None:
                raise UploadError("That sketch is not one of yours, or no longer exists; upload it again.")
            return found
        if key := data.get("sketch_image"):
            image = _owned_image(self.user, key)
            if image is None:
                raise UploadError("That studio image is not one of yours, or no longer exists.")
            return from_studio_image(self.user, image)
        return None


def _owned_image(owner: Any, key: str) -> GeneratedImage | None:
    try:
        return GeneratedImage.objects.filter(job__owner=owner, pk=uuid.UUID(key)).first()
    except ValueError:
        return None


def check_output(preset: AssetPreset, quality: str, width: int, height: int) -> None:
    """The finished size (the size asked × the tier's upscale) within STUDIO_MAX_OUTPUT_SIDE:
    the same check `jobs.recipe.resolve_params` makes, here so the form (and so the API) says so."""
    tier = QUALITY[Quality(quality)]
    factor = tier.upscale if preset.use_upscaler else 1
    check_output_side(quality, (width, height), (width * factor, height * factor))


def size_for(preset: AssetPreset, model: ImageModel | None, size: str | None) -> tuple[int, int]:
    """The (width, height) to render: one of the asset type's sizes that the model can draw."""
    size = size or preset.default_size
    if size not in preset.size_choices:
        raise forms.ValidationError(
            f"{size} is not a size for {preset.name}; pick one of {', '.join(preset.size_choices)}."
        )
    width, height = (int(n) for n in size.split("x"))
    problem = model.renders(width, height) if model else ""
    if problem:
        raise forms.ValidationError(f"{problem}; {preset.name} at {size} is not a size it can draw.")
    return width, height


def limit_models(form: forms.Form, user: Any) -> None:
    """Offer each user the models they may use (see `auth.models_for`)."""
    field = form.fields["models" if "models" in form.fields else "model"]
    assert isinstance(field, forms.ModelChoiceField)
    field.queryset = models_for(user, field.queryset)  # type: ignore[arg-type]


class CompareForm(StorableForm):
    """One description across several models, or across several asset types."""

    prompt = prompt_field()
    presets = NamedMultipleChoiceField(
        queryset=AssetPreset.objects.filter(enabled=True),
        to_field_name="slug",
        widget=forms.CheckboxSelectMultiple,
        label="Asset types",
        error_messages={"required": "Pick at least one asset type.", "invalid_choice": "Pick available asset types."},
    )
    models = NamedMultipleChoiceField(
        queryset=ImageModel.objects.filter(enabled=True),
        to_field_name="key",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Pick at least one model.", "invalid_choice": "Pick available models."},
    )
    quality = forms.ChoiceField(choices=Quality.choices, initial=Quality.DRAFT, widget=forms.RadioSelect)
    variations = forms.IntegerField(
        min_value=1, max_value=4, initial=2, widget=forms.NumberInput(attrs={"class": "narrow"})
    )
    seed = GenerateForm.base_fields["seed"]

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit_models(self, user)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        presets, models = list(data.get("presets") or []), list(data.get("models") or [])
        if not presets or not models:
            return data
        if len(presets) > 1 and len(models) > 1:
            raise forms.ValidationError(
                "Compare either models (one asset type, several models) or asset types (one model, several "
                "asset types), not both at once."
            )
        if len(presets) * len(models) < 2:
            raise forms.ValidationError("Pick two or more models, or two or more asset types, to compare.")
        if len(presets) * len(models) > settings.STUDIO_MAX_COMPARE:
            raise forms.ValidationError(f"Compare at most {settings.STUDIO_MAX_COMPARE} side by side.")
        for preset in presets:
            if problem := banned_problem(preset, data.get("prompt") or ""):
                self.add_error("prompt", problem)
                return data
            for model in models:
                width, height = size_for(preset, model, None)
                if data.get("quality"):
                    check_output(preset, data["quality"], width, height)
        data["presets"], data["models"] = presets, models
        return data


class BatchForm(StorableForm):
    """Several descriptions (one per line, or a CSV) for one asset type."""

    preset = GenerateForm.base_fields["preset"]
    model = GenerateForm.base_fields["model"]
    descriptions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "placeholder": "a clipboard with three checkmarks\na paper plane"}),
        help_text="One description per line.",
    )
    csv_file = forms.FileField(
        required=False, label="…or a CSV file", help_text="A column named prompt or description, or the first column."
    )
    quality = forms.ChoiceField(choices=Quality.choices, initial=Quality.STANDARD, widget=forms.RadioSelect)
    variations = forms.IntegerField(
        min_value=1,
        max_value=settings.STUDIO_MAX_VARIATIONS,
        initial=2,
        label="Variations each",
        widget=forms.NumberInput(attrs={"class": "narrow"}),
    )

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit_models(self, user)
        if not self.is_bound:
            self.initial.setdefault(
                "preset", AssetPreset.objects.filter(enabled=True).values_list("slug", flat=True).first()
            )
            self.initial.setdefault("model", settings.STUDIO_DEFAULT_MODEL)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("model") and "model" not in self.errors:
            data["model"] = ImageModel.objects.filter(key=settings.STUDIO_DEFAULT_MODEL, enabled=True).first()
        upload: UploadedFile | None = data.get("csv_file")
        prompts = read_csv(upload) if upload else read_lines(data.get("descriptions") or "")
        if not prompts:
            raise forms.ValidationError("Give at least one description: one per line, or a CSV file.")
        if len(prompts) > settings.STUDIO_MAX_BATCH_ITEMS:
            raise forms.ValidationError(
                f"That is {len(prompts)} descriptions; one batch takes at most {settings.STUDIO_MAX_BATCH_ITEMS}."
            )
        for number, prompt in enumerate(prompts, start=1):
            if len(prompt) > 1000:
                raise forms.ValidationError(f"Description {number} is over 1000 characters.")
            if problem := banned_problem(data.get("preset"), prompt):
                raise forms.ValidationError(f"Description {number}: {problem}")
        data["prompts"] = prompts
        if data.get("preset"):
            data["width"], data["height"] = size_for(data["preset"], data.get("model"), None)
            if data.get("quality"):
                check_output(data["preset"], data["quality"], data["width"], data["height"])
        return data


def read_lines(text: str) -> list[str]:
    """Non-empty lines; a line starting with # is a comment."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


MAX_CSV_BYTES = 1 * 2**20
PROMPT_COLUMNS = ("prompt", "description", "subject")


def read_csv(upload: UploadedFile) -> list[str]:
    if (upload.size or 0) > MAX_CSV_BYTES:
        raise forms.ValidationError("That CSV is over 1 MB; a batch is a short list of descriptions.")
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise forms.ValidationError("That CSV is not UTF-8 text; save it as “CSV UTF-8” and try again.") from None
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise forms.ValidationError(f"That CSV could not be read: {exc}.") from None
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((header.index(name) for name in PROMPT_COLUMNS if name in header), None)
    if column is None:  # no header: the first column holds the descriptions
        column, body = 0, rows
    else:
        body = rows[1:]
    return [row[column].strip() for row in body if len(row) > column and row[column].strip()]
