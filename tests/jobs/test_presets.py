import pytest
from django.core.exceptions import ValidationError

from generation.models import AssetPreset
from tests.factories import AssetPresetFactory

pytestmark = pytest.mark.django_db


def test_the_four_asset_types_of_the_brief_are_seeded() -> None:
    icon = AssetPreset.objects.get(slug="icon")
    assert icon.size_choices == ["256x256", "512x512", "1024x1024"] and icon.default_size == "512x512"
    assert icon.steps == 28 and icon.guidance_scale == 3.5
    assert set(AssetPreset.objects.values_list("slug", flat=True)) >= {
        "icon",
        "product-illustration",
        "logo-illustration",
        "premium-illustration",
    }


def test_the_template_expands_the_subject_on_one_line() -> None:
    preset = AssetPresetFactory.build(prompt_template="{subject},\n   flat icon,\n  brand style")
    assert preset.expand_prompt("  a gear ") == "a gear, flat icon, brand style"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prompt_template": "flat icon"}, "must contain {subject}"),
        ({"allowed_sizes": [[100, 100]]}, "multiples of 16"),
        ({"allowed_sizes": "512"}, "at least one size"),
        ({"default_width": 1024, "default_height": 1024}, "default size must be one of the allowed"),
        ({"allowed_sizes": [[64, 64], [4096, 4096]]}, "No enabled model renders 4096x4096; the largest side is"),
    ],
)
def test_an_admin_cannot_save_an_invalid_preset(changes, message) -> None:
    preset = AssetPresetFactory.build(**changes)
    with pytest.raises(ValidationError, match=message):
        preset.full_clean()
