"""What every resource module needs: the signed-in user, absolute URLs, the user's own rows."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Schema
from pydantic import field_validator
from pydantic_core import PydanticCustomError

from ..models import GeneratedImage, GenerationJob
from ..storable import MESSAGE as UNSTORABLE
from ..storable import storable


class InputSchema(Schema):
    """The base of every schema the API reads (bodies and query parameters): no field takes
    text the database cannot hold, whatever its type says, so a new field cannot forget it."""

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # Before the field's own checks: a pattern or a choice would refuse NUL with a vaguer message.
        if not storable(value):
            raise PydanticCustomError("unstorable", UNSTORABLE)
        return value


def user_of(request: HttpRequest) -> Any:
    return request.user


def absolute(request: HttpRequest, path: str) -> str:
    # The scheme and host once per request: a job lists each of its images' URLs.
    base = getattr(request, "_studio_base", None)
    if base is None:
        base = request._studio_base = request.build_absolute_uri("/").rstrip("/")  # type: ignore[attr-defined]
    return base + path


def own_job(request: HttpRequest, job_id: UUID) -> GenerationJob:
    return get_object_or_404(GenerationJob.objects.select_related("preset"), pk=job_id, owner=user_of(request))


def own_image(request: HttpRequest, image_id: UUID) -> GeneratedImage:
    return get_object_or_404(
        GeneratedImage.objects.select_related("job__preset"), pk=image_id, job__owner=user_of(request)
    )
