"""Colour checks shared by the admin, the forms and the stages. No numpy: the web process uses them."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError

# Patterns that validate are used with fullmatch: "$" also matches before a final newline.
HEX = re.compile(r"#[0-9a-fA-F]{6}")
MAX_PALETTE = 32  # more colours than this is not a brand palette, and tracing slows with each


def validate_hex(value: str) -> None:
    if value and not HEX.fullmatch(value):
        raise ValidationError(f"{value!r} is not a colour like #0f6cbd (# and six hex digits).")


def validate_palette(value: Any) -> None:
    if not isinstance(value, list):
        raise ValidationError('Give the palette as a list of colours, e.g. ["#0f6cbd", "#107c10"].')
    if len(value) > MAX_PALETTE:
        raise ValidationError(f"A palette has at most {MAX_PALETTE} colours; this one has {len(value)}.")
    for colour in value:
        if not isinstance(colour, str) or not HEX.fullmatch(colour):
            raise ValidationError(f"{colour!r} is not a colour like #0f6cbd (# and six hex digits).")


def hex_to_rgb(value: str) -> tuple[int, int, int]:
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)
