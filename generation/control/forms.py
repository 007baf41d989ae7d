"""The inpaint page's form: the mask the canvas painted (or a file), and what to draw there."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from ..forms import StorableForm, prompt_field
from ..models import ImageModel
from ..uploads import UploadError
from .edit import edit_models
from .inpaint import store_mask


class InpaintForm(StorableForm):
    # The canvas fills the file input at submit: a browser's own "required" check would stop it first.
    use_required_attribute = False

    mask = forms.FileField(
        label="Mask",
        help_text="Paint over what should change. Or upload a mask: white (or opaque) where it changes.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/webp"}),
        error_messages={"required": "Paint over the part of the image that should change."},
    )
    prompt = prompt_field(required=False)
    variations = forms.IntegerField(min_value=1, max_value=settings.STUDIO_MAX_VARIATIONS, initial=4)

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["prompt"].help_text = "What the painted part should show; the description of the image by default."

    def clean_mask(self) -> Any:
        upload = self.cleaned_data["mask"]
        try:
            return store_mask(self.user, upload, upload.name or "mask.png")
        except UploadError as exc:
            raise forms.ValidationError(f"{upload.name}: {exc}") from None


class EditForm(StorableForm):
    instruction = forms.CharField(
        label="What to change",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "make the background blue"}),
        error_messages={"required": "Say what to change, e.g. “make the background blue”."},
    )
    model = forms.ModelChoiceField(queryset=ImageModel.objects.none(), empty_label=None, label="Edit with")
    variations = forms.IntegerField(min_value=1, max_value=settings.STUDIO_MAX_VARIATIONS, initial=2)

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["model"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = ImageModel.objects.filter(pk__in=[m.pk for m in edit_models(user)])


class OutpaintForm(StorableForm):
    left = forms.IntegerField(min_value=0, max_value=100, initial=0, label="Left %")
    right = forms.IntegerField(min_value=0, max_value=100, initial=0, label="Right %")
    top = forms.IntegerField(min_value=0, max_value=100, initial=0, label="Top %")
    bottom = forms.IntegerField(min_value=0, max_value=100, initial=0, label="Bottom %")
    prompt = prompt_field(required=False)
    variations = forms.IntegerField(min_value=1, max_value=settings.STUDIO_MAX_VARIATIONS, initial=4)

    def extend(self) -> dict[str, int]:
        return {side: self.cleaned_data.get(side) or 0 for side in ("left", "right", "top", "bottom")}
