"""Colour checks: a pattern that validates matches the whole value, or the value is refused."""

import pytest
from django.core.exceptions import ValidationError

from generation.finishing.validators import validate_hex, validate_palette
from tests.factories import BrandKitFactory

NEARLY = ["#0f6cbd\n", "#0f6cbd\r\n", " #0f6cbd", "#0f6cbd ", "#0f6cbdff"]


@pytest.mark.parametrize("colour", NEARLY)
def test_a_colour_with_anything_around_it_is_refused_as_a_colour_and_in_a_palette(colour: str) -> None:
    with pytest.raises(ValidationError):
        validate_hex(colour)
    with pytest.raises(ValidationError):
        validate_palette(["#107c10", colour])
    validate_hex("#0f6cbd")
    validate_palette(["#0f6cbd", "#107C10"])


@pytest.mark.django_db
def test_a_brand_kit_with_a_trailing_newline_in_its_palette_or_background_is_refused_by_name() -> None:
    kit = BrandKitFactory.build(palette=["#0f6cbd\n"], background_colour="#ffffff\n")
    with pytest.raises(ValidationError) as refused:
        kit.full_clean()
    assert {"palette", "background_colour"} <= set(refused.value.message_dict)
