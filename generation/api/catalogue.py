"""What a client can ask for: the asset types and the models this user may use."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Router, Schema

from ..auth import models_for
from ..control.addons import capabilities
from ..models import AssetPreset, ImageModel
from .common import user_of
from .errors import ERRORS

router = Router(tags=["catalogue"])


class AssetTypeOut(Schema):
    slug: str
    name: str
    description: str
    default_size: str
    sizes: list[str]
    steps: int
    guidance_scale: float


class ModelOut(Schema):
    key: str
    name: str
    family: str
    license: str
    commercial_use: bool
    license_notice: str
    license_url: str = Field("", description="The license's text, where the registry links one")
    max_side: int
    default: bool
    subjects: list[str]
    can: list[str] = Field(
        description="How it can be steered: sketch (start from a drawing), inpaint (repaint a mask), edit "
        "(follow an instruction on an image), references (style references, through an IP-Adapter add-on or "
        "the model's own image input), "
        "control:canny, control:tile and control:depth (a sketch through a ControlNet add-on; depth also needs "
        "a depth estimator add-on)",
        examples=[["sketch", "inpaint"]],
    )


@router.get("/asset-types", response={200: list[AssetTypeOut], **ERRORS})
def asset_types(request: HttpRequest) -> list[dict[str, Any]]:
    return [
        {
            "slug": p.slug,
            "name": p.name,
            "description": p.description,
            "default_size": p.default_size,
            "sizes": p.size_choices,
            "steps": p.steps,
            "guidance_scale": p.guidance_scale,
        }
        for p in AssetPreset.objects.filter(enabled=True)
    ]


@router.get("/models", response={200: list[ModelOut], **ERRORS})
def models_list(request: HttpRequest) -> list[dict[str, Any]]:
    return [
        {
            "key": m.key,
            "name": m.name,
            "family": m.family,
            "license": m.license_name,
            "commercial_use": m.commercial_use,
            "license_notice": m.license_notice,
            "license_url": m.license_url,
            "max_side": m.max_side,
            "default": m.key == settings.STUDIO_DEFAULT_MODEL,
            "subjects": m.subjects,
            "can": capabilities(m),
        }
        for m in models_for(user_of(request), ImageModel.objects.filter(enabled=True))
    ]
