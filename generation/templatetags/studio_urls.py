"""`{% id_url "image-file" image.id %}`: `{% url %}` for the URLs a grid repeats per image.

A history page links every image five to ten times; `reverse` walks the URL resolver each time
(over half of that page's server time). The URL of one pattern differs only by the id, so each
pattern is reversed once, with a placeholder id, and filled in by string replacement.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django import template
from django.urls import reverse

register = template.Library()

PLACEHOLDER = "00000000-0000-4000-8000-00000000abcd"


@lru_cache(maxsize=64)
def _pattern(name: str) -> str:
    url = reverse(name, args=[PLACEHOLDER])
    if url.count(PLACEHOLDER) != 1:
        raise template.TemplateSyntaxError(f"id_url: {name} does not take one UUID")
    return url


@register.simple_tag
def id_url(name: str, pk: Any) -> str:
    return _pattern(name).replace(PLACEHOLDER, str(pk))
