"""What every resource module needs: the signed-in user, absolute URLs, the user's own rows."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from ..models import GeneratedImage, GenerationJob


def user_of(request: HttpRequest) -> Any:
    return request.user


def absolute(request: HttpRequest, path: str) -> str:
    return request.build_absolute_uri(path)


def own_job(request: HttpRequest, job_id: UUID) -> GenerationJob:
    return get_object_or_404(GenerationJob.objects.select_related("preset"), pk=job_id, owner=user_of(request))


def own_image(request: HttpRequest, image_id: UUID) -> GeneratedImage:
    return get_object_or_404(
        GeneratedImage.objects.select_related("job__preset"), pk=image_id, job__owner=user_of(request)
    )
