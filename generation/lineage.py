"""What made an image, as its page shows it (templates/generation/image.html#lineage): the
finishing it went through, its upscaler, the edits it came from. The image page, the review
queue and the Brand Library's items draw the same lineage from this."""

from __future__ import annotations

from typing import Any

from .control.edit import chain as edit_chain
from .models import GeneratedImage, Upscaler


def image_lineage(image: GeneratedImage) -> dict[str, Any]:
    """The context `image.html#lineage` reads, besides `image` and `job`."""
    plan = image.job.params.get("finishing") or {}
    upscaler = (plan.get("upscaler") or {}).get("key")
    return {
        "plan": plan,
        "finishing": finishing_rows(image),
        "upscaler": Upscaler.objects.filter(key=upscaler).first() if upscaler else None,
        # Named where the tier asks for it or where its passes ran (a small native size, any tier).
        "show_upscaler": plan.get("upscale", 1) > 1 or any(r.get("stage") == "upscale" for r in image.finishing or []),
        "edit_chain": edit_chain(image),
    }


def finishing_rows(image: GeneratedImage) -> list[dict[str, Any]]:
    """The image's finishing record for its page: each stage, its settings as text, its seconds."""
    rows = []
    for record in image.finishing or []:
        settings_ = record.get("settings") or {}
        shown = ", ".join(f"{k} {_setting(v)}" for k, v in settings_.items() if v not in (None, "", []))
        rows.append({"stage": record.get("stage", ""), "settings": shown, "seconds": record.get("seconds", 0)})
    return rows


def _setting(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list | tuple):
        return "×".join(str(v) for v in value) if all(isinstance(v, int) for v in value) else " ".join(map(str, value))
    return str(value)
