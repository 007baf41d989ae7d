from typing import Any

from django import forms
from django.conf import settings

from .models import AssetPreset, ImageModel, Quality
from .services import MAX_SEED


class PresetChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: AssetPreset) -> str:
        return obj.name


class ModelChoiceByName(forms.ModelChoiceField):
    def label_from_instance(self, obj: ImageModel) -> str:
        return obj.name


class GenerateForm(forms.Form):
    preset = PresetChoiceField(
        queryset=AssetPreset.objects.filter(enabled=True),
        to_field_name="slug",
        empty_label=None,
        widget=forms.RadioSelect,
        label="Asset type",
        error_messages={"invalid_choice": "Pick one of the available asset types."},
    )
    prompt = forms.CharField(
        label="Describe what you need",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "a clipboard with three checkmarks"}),
        error_messages={
            "required": "Describe what you need.",
            "max_length": "Keep the description under 1000 characters (it has %(show_value)d).",
        },
    )
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        preset = self._selected_preset()
        choices = [("", f"Default ({preset.default_size})")] if preset else [("", "Default")]
        choices += [(size, size) for size in (preset.size_choices if preset else [])]
        self.fields["size"].widget.choices = choices
        if not self.is_bound:  # a fresh form starts on the first asset type and the default model
            self.initial["preset"] = self.initial.get("preset") or (preset.slug if preset else None)
            self.initial.setdefault("model", settings.STUDIO_DEFAULT_MODEL)

    def _selected_preset(self) -> AssetPreset | None:
        slug = self.data.get("preset") if self.is_bound else self.initial.get("preset")
        queryset = AssetPreset.objects.filter(enabled=True)
        if isinstance(slug, AssetPreset):
            return slug
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
        size = data.get("size") or preset.default_size
        if size not in preset.size_choices:
            self.add_error(
                "size", f"{size} is not a size for {preset.name}; pick one of {', '.join(preset.size_choices)}."
            )
            return data
        width, height = (int(n) for n in size.split("x"))
        model: ImageModel | None = data.get("model")
        if model and max(width, height) > model.max_side:
            self.add_error(
                "size", f"{model.name} renders up to {model.max_side}×{model.max_side}; pick a smaller size."
            )
            return data
        data["width"], data["height"] = width, height
        return data
