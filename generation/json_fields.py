"""What every JSON field the admin edits takes: one parser and one validator, so text that Python's
json module or Postgres would choke on (50,000 levels deep, a 5,000-digit integer, NaN or 1e999,
a lone surrogate) is a form error naming the problem, never a server error."""

from __future__ import annotations

import json
import math
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from .storable import MESSAGE, storable

MAX_DEPTH = 20  # far more than any setting here nests
MAX_ITEMS = 10_000  # values, keys included
MAX_INT = 2**63 - 1  # what Postgres' jsonb and the studio's code take as a whole number


def validate_json_value(value: Any) -> None:
    """Nested at most MAX_DEPTH deep, at most MAX_ITEMS values, finite numbers within range, and
    text the database can hold. Walked with a list, not recursion."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    while pending:
        item, depth = pending.pop()
        seen += 1
        if depth > MAX_DEPTH:
            raise ValidationError(f"Nested deeper than {MAX_DEPTH} levels.")
        if seen > MAX_ITEMS:
            raise ValidationError(f"More than {MAX_ITEMS:,} values.")
        if isinstance(item, bool) or item is None:
            continue
        if isinstance(item, int) and abs(item) > MAX_INT:
            raise ValidationError(f"A whole number past ±{MAX_INT:,}.")
        if isinstance(item, float) and not math.isfinite(item):
            raise ValidationError("A number that is not finite (NaN or infinity).")
        if isinstance(item, str) and not storable(item):
            raise ValidationError(MESSAGE)
        if isinstance(item, dict):
            pending.extend((part, depth + 1) for pair in item.items() for part in pair)
        elif isinstance(item, list):
            pending.extend((part, depth + 1) for part in item)


def parse_json(text: str) -> Any:
    """`text` as JSON, or ValidationError saying why (NaN and Infinity are not JSON)."""

    def refuse_constant(name: str) -> Any:
        raise ValidationError(f"{name} is not a number JSON can hold.")

    try:
        value = json.loads(text, parse_constant=refuse_constant)
    except RecursionError:
        raise ValidationError(f"Nested deeper than {MAX_DEPTH} levels.") from None
    except ValueError as exc:  # not JSON, or an integer too long to read
        raise ValidationError(f"Not valid JSON: {exc}") from None
    validate_json_value(value)
    return value


class JSONValueField(forms.JSONField):
    """Django's JSON form field, parsing through parse_json (which Django's does not guard)."""

    def to_python(self, value: Any) -> Any:
        if self.disabled or value in self.empty_values:
            return super().to_python(value)
        if isinstance(value, list | dict | int | float | forms.fields.JSONString):
            return value
        parsed = parse_json(value)
        return forms.fields.JSONString(parsed) if isinstance(parsed, str) else parsed  # as Django's field does

    def bound_data(self, data: Any, initial: Any) -> Any:
        """What the form shows back: the parsed value, or the text as typed when it does not pass
        (re-encoded, a lone surrogate could not even be sent back in the page)."""
        if self.disabled:
            return initial
        if data is None:
            return None
        try:
            return parse_json(data)
        except ValidationError:
            return forms.fields.InvalidJSONInput(data)
