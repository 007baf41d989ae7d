"""`{% id_url "image-file" image.id %}`: `{% url %}` for the URLs a grid repeats per image.

A history page links every image five to ten times; `reverse` walks the URL resolver each time
(over half of that page's server time). The URL of one pattern differs only by the id, so each
pattern is reversed once, with a placeholder id, and filled in by string replacement.
"""

from __future__ import annotations

import zlib
from datetime import timedelta
from functools import lru_cache
from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import mark_safe

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


# --- the image tile, drawn in Python
#
# Grids are the studio's hot path: a history page draws 160 tiles, and the template engine
# spent about half a millisecond on each (variable lookups, includes, localised numbers). The
# same markup from one format string costs a tenth of that; `job.html#image-tile` calls this.

TILE = """<figure{figure_class}>
  <a href="{page}" title="Open full size"><img src="{thumb}" alt="Variation {number}, seed {seed}" \
width="{width}" height="{height}" loading="lazy"{img_class}></a>
  <figcaption>{compliance}
    <label class="pick" title="Select for a zip"><input type="checkbox" name="id" value="{id}" form="selection">\
<span class="visually-hidden">Select</span></label>
    seed {seed} · <a href="{file}?download=1" download>PNG</a> · \
<a href="{file}?download=1&amp;format=webp" download>WebP</a>{svg} {star}
  </figcaption>{vary}
</figure>"""

VARY = """
  <div class="vary">More like this:
    <form method="post" action="{url}" hx-post="{url}" hx-target="closest .job" hx-swap="afterend" class="inline">\
{csrf}<button class="link" name="strength" value="subtle">Subtle</button></form> ·
    <form method="post" action="{url}" hx-post="{url}" hx-target="closest .job" hx-swap="afterend" class="inline">\
{csrf}<button class="link" name="strength" value="strong">Strong</button></form>
  </div>"""

STAR_ON = """<button class="star on" title="Remove from favorites" aria-pressed="true"
  hx-delete="{url}" hx-swap="outerHTML">★</button>"""
STAR_OFF = """<button class="star" title="Add to favorites" aria-pressed="false"
  hx-post="{url}" hx-swap="outerHTML">☆</button>"""


def _star(image: Any, favorite_ids: Any) -> str:
    template = STAR_ON if image.id in favorite_ids else STAR_OFF
    return template.format(url=id_url("image-favorite", image.id))


@register.simple_tag(takes_context=True)
def favorite_button(context: template.Context, image: Any) -> str:
    return mark_safe(_star(image, context.get("favorite_ids") or ()))  # noqa: S308 (ids and our URLs only)


SVG_LINK = ' · <a href="{file}?download=1&amp;format=svg" download>SVG</a>'
COMPLIANCE = '\n    <span class="compliance{flag}">{text}</span>'


def _compliance(image: Any) -> tuple[str, bool]:
    """ "on-brand 97%" under the tile, flagged below the asset type's floor (frozen in the job's plan)."""
    score = image.compliance_after
    if score is None:
        return "", False
    raw = ((image.job.params or {}).get("finishing") or {}).get("floor")
    floor = None if raw is None else float(raw)
    low = floor is not None and score < floor
    text = f"on-brand {score * 100:.0f}%" + (f" · below {floor * 100:.0f}%" if floor is not None and low else "")
    return COMPLIANCE.format(flag=" flag" if low else "", text=text), low


def _version(image: Any) -> str:
    name = str(getattr(image, "thumbnail", "") or "")
    return f"?v={zlib.crc32(name.encode()):08x}" if name else ""


@register.simple_tag(takes_context=True)
def image_tile(context: template.Context, image: Any, vary: bool = False) -> str:
    # Every value here is an id, a number or a URL the studio made: nothing a user typed.
    vary_html = ""
    if vary:
        csrf = f'<input type="hidden" name="csrfmiddlewaretoken" value="{escape(context.get("csrf_token", ""))}">'
        vary_html = VARY.format(url=id_url("image-vary", image.id), csrf=csrf)
    compliance, low = _compliance(image)
    file_url = id_url("image-file", image.id)
    html = TILE.format(
        page=id_url("image", image.id),
        # The view falls back to the PNG for old images. The thumbnail's stored name in the URL: the
        # finished image replaces the render's under the same id, and browsers cache thumbnails for days.
        thumb=id_url("image-thumbnail", image.id) + _version(image),
        file=file_url,
        number=int(image.index) + 1,
        seed=int(image.seed),
        width=int(image.width),
        height=int(image.height),
        id=image.id,
        star=_star(image, context.get("favorite_ids") or ()),
        vary=vary_html,
        figure_class=' class="off-brand"' if low else "",
        img_class=' class="checker"' if getattr(image, "has_alpha", False) else "",
        compliance=compliance,
        svg=SVG_LINK.format(file=file_url) if getattr(image, "svg", None) else "",
    )
    return mark_safe(html)  # noqa: S308


@register.filter
def duration(value: timedelta | None) -> str:
    """A timedelta as people read it: "42 s", "3 min 5 s", "1 h 20 min"."""
    if value is None:
        return ""
    seconds = max(0, int(value.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
