import csv
import io
from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from .models import AssetPreset, ImageModel, Quality
from .services import MAX_SEED


def storable(value: Any) -> bool:
    """Text the database can hold: no NUL characters, no lone UTF-16 surrogates."""
    if not isinstance(value, str):
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def validate_storable(value: Any) -> None:
    if not storable(value):
        raise forms.ValidationError("That text holds characters that cannot be stored.")


class StorableChoiceField(forms.ModelChoiceField):
    """A model choice whose lookup never sends the database a value it would choke on."""

    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)

    def to_python(self, value: Any) -> Any:
        if not storable(value):
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


PresetChoiceField = ModelChoiceByName = StorableChoiceField


def search_text(value: str) -> str:
    """Free text for a query, without what databases refuse (NUL, lone surrogates) and no search holds."""
    return value.replace("\x00", "").encode("utf-8", "ignore").decode("utf-8")


class NamedMultipleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: AssetPreset | ImageModel) -> str:
        return obj.name

    def clean(self, value: Any) -> Any:
        if not all(storable(v) for v in value or []):
            raise forms.ValidationError(self.error_messages["invalid_choice"] % {"value": "?"}, code="invalid_choice")
        return super().clean(value)


def _prompt_field(**kwargs: Any) -> forms.CharField:
    return forms.CharField(
        label="Describe what you need",
        max_length=1000,
        validators=[validate_storable],
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "a clipboard with three checkmarks"}),
        error_messages={
            "required": "Describe what you need.",
            "max_length": "Keep the description under 1000 characters (it has %(show_value)d).",
        },
        **kwargs,
    )


class GenerateForm(forms.Form):
    preset = PresetChoiceField(
        queryset=AssetPreset.objects.filter(enabled=True),
        to_field_name="slug",
        empty_label=None,
        widget=forms.RadioSelect,
        label="Asset type",
        error_messages={"invalid_choice": "Pick one of the available asset types."},
    )
    prompt = _prompt_field()
    model = ModelChoiceByName(
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

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit_models(self, user)
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
        """The validated form as `services.job_create` arguments (the studio page and the API)."""
        data = self.cleaned_data
        fields = ("preset", "prompt", "model", "quality", "variations", "width", "height", "seed")
        return {name: data[name] for name in fields} | {"brand_lora": data.get("brand_lora") or ""}

    def _selected_preset(self) -> AssetPreset | None:
        slug = self.data.get("preset") if self.is_bound else self.initial.get("preset")
        queryset = AssetPreset.objects.filter(enabled=True)
        if isinstance(slug, AssetPreset):
            return slug
        if not storable(slug):
            slug = None  # the field's own validation reports it
        return (queryset.filter(slug=slug).first() if slug else None) or queryset.first()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("model") and "model" not in self.errors:
            data["model"] = ImageModel.objects.filter(key=settings.STUDIO_DEFAULT_MODEL, enabled=True).first()
            if data["model"] is None:
                self.add_error("model", "No model is available; ask an admin to enable one.")
        preset: AssetPreset | None = data.get("preset")
        if preset is None:
            return data
        try:
            data["width"], data["height"] = size_for(preset, data.get("model"), data.get("size"))
        except forms.ValidationError as exc:
            self.add_error("size", exc)
        model, choice = data.get("model"), data.get("brand_lora") or ""
        if choice in ("", "none") or model is None:
            return data
        if not preset.trained_loras.filter(pk=choice, family=model.family, enabled=True).exists():
            self.add_error("brand_lora", f"That LoRA version is not for {preset.name} on {model.name}.")
        return data


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
    """Models whose license does not allow production use only for the reference group, if set."""
    from .auth import may_use_reference_models

    field = form.fields["models" if "models" in form.fields else "model"]
    assert isinstance(field, forms.ModelChoiceField)
    if not may_use_reference_models(user):
        field.queryset = field.queryset.filter(commercial_use=True)  # type: ignore[union-attr]


class CompareForm(forms.Form):
    """One description across several models, or across several asset types."""

    prompt = _prompt_field()
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
            for model in models:
                size_for(preset, model, None)
        data["presets"], data["models"] = presets, models
        return data


class BatchForm(forms.Form):
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
            if not storable(prompt):
                raise forms.ValidationError(f"Description {number} holds characters that cannot be stored.")
        data["prompts"] = prompts
        if data.get("preset"):
            data["width"], data["height"] = size_for(data["preset"], data.get("model"), None)
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
