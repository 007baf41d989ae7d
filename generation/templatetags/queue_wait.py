"""`{% gpu_cold_start as seconds %}`: how long a GPU worker takes to start while none runs (0 while
one does), for a waiting job's panel, wherever it is drawn (a page, the live channel)."""

from django import template

from ..jobs.selectors import gpu_cold_start_seconds

register = template.Library()


@register.simple_tag
def gpu_cold_start() -> int:
    return gpu_cold_start_seconds()
