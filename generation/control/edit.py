"""Instruction edits: "make the background blue", "add a checkmark" on a studio image, through
a model whose pipeline takes the image with the instruction (FLUX.2 klein, the image as its
reference; FLUX.1 Kontext). The result links to its source, so an image's page shows the chain of edits."""

from __future__ import annotations

from typing import Any

from ..auth import models_for
from ..models import GeneratedImage, ImageModel


def edit_models(user: Any) -> list[ImageModel]:
    """The models this user may edit with (enabled, allowed to them, with an edit pipeline)."""
    return [m for m in models_for(user, ImageModel.objects.filter(enabled=True)) if m.supports_edit]


def edit_problem(user: Any, model: ImageModel | None = None) -> str:
    """Why no edit can run ("" when one can), naming what can edit."""
    if model is not None and not model.supports_edit:
        able = ", ".join(m.name for m in edit_models(user)) or "none is installed"
        return f"{model.name} cannot follow an edit instruction (no edit pipeline); models that can: {able}."
    if not edit_models(user):
        return (
            "No model here can follow an edit instruction: an admin installs FLUX.2 [klein] or FLUX.1 Kontext "
            "(their pipelines change the image they are given) to offer Edit."
        )
    return ""


def chain(image: GeneratedImage, limit: int = 20) -> list[dict[str, Any]]:
    """The edits that led to this image, oldest first: [{"image": source, "instruction": ...}]."""
    steps: list[dict[str, Any]] = []
    current = image
    while (edit := current.job.params.get("edit")) and len(steps) < limit:
        source = GeneratedImage.objects.select_related("job").filter(pk=edit["of"]).first()
        steps.append({"image": source, "instruction": edit["instruction"], "of_seed": edit["of_seed"]})
        if source is None:
            break
        current = source
    return list(reversed(steps))
