"""What answers when the studio is asked how it is, or cannot answer: the health check for load
balancers and monitoring, and the 500 handler that tells a database outage (503, try again) and a
full disk (507) from a bug."""

import errno
import secrets
import shutil
import sys
from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults
from django.views.decorators.http import require_GET

from . import ops
from .models import GenerationJob


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """For load balancers and monitoring: 200 when the database, broker and storage answer,
    503 (naming what failed) when not; local media with less free space than STUDIO_MIN_FREE_DISK_MB
    fails storage too, and says how much is left. ?workers=1 also names the workers that answer:
    for staff or the health token only (it names machines, and asking them holds a thread up to a
    second), and answered from a cache of a few seconds (ops.worker_names)."""
    if request.GET.get("workers") and not _may_ask_workers(request):
        return JsonResponse({"error": "Naming the workers takes staff or the health token."}, status=403)
    low_disk = _low_disk()
    checks = {"database": _check_database(), "broker": _check_broker(), "storage": _check_storage() and not low_disk}
    body: dict[str, object] = {"status": "ok" if all(checks.values()) else "failing", **checks, **low_disk}
    if request.GET.get("workers"):
        body["workers"] = ops.worker_names()
    return JsonResponse(body, status=200 if all(checks.values()) else 503)


def _may_ask_workers(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    token = settings.STUDIO_HEALTH_TOKEN
    return bool(token) and secrets.compare_digest(given.encode(), token.encode())


# A database that does not answer (an outage, a failover, a restart) is worth retrying soon.
OUTAGE = (OperationalError, InterfaceError)


RETRY_AFTER = 10


# A write refused for want of space: the disk is full, or the studio's quota is spent.
DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler: a request that failed because the database does not answer gets a
    503 that says to try again, one whose file could not be written for want of space a 507 that
    says storage is full (JSON on the API, a page that reads nothing from the database
    elsewhere); anything else is the usual 500."""
    failure = sys.exc_info()[1]
    if isinstance(failure, OUTAGE):
        return database_unavailable(request)
    if disk_full(failure):
        return storage_full(request)
    return defaults.server_error(request)


def disk_full(failure: BaseException | None) -> bool:
    """Whether `failure`, or anything it was raised from or while handling, is a write refused
    for want of space (whoever wrapped the OSError on the way up)."""
    seen: set[int] = set()
    while failure is not None and id(failure) not in seen:
        if isinstance(failure, OSError) and failure.errno in DISK_FULL:
            return True
        seen.add(id(failure))
        failure = failure.__cause__ or failure.__context__
    return False


def database_unavailable(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        body = {"message": "The studio cannot reach its database just now; try again shortly.", "field": None}
        response: HttpResponse = JsonResponse(body, status=503)
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER)
    return response


def storage_full(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        body = {
            "message": "The studio's storage is full; nothing was saved. Try again once an admin has freed space.",
            "field": None,
        }
        return JsonResponse(body, status=507)
    return HttpResponse(render_to_string("507.html"), status=507)


def _check_database() -> bool:
    try:
        return GenerationJob.objects.exists() in (True, False)
    except Exception:
        return False


def _check_broker() -> bool:
    return all(depth is not None for depth in ops.queue_depths().values())


def _check_storage() -> bool:
    try:
        default_storage.exists("health-check")
    except Exception:
        return False
    return True


def _low_disk() -> dict[str, int]:
    """The free space under local media and the minimum, in MB, when it is under
    STUDIO_MIN_FREE_DISK_MB; nothing when there is enough, or for storage that is not a local
    folder (Azure Blob), or a folder that cannot be asked (which _check_storage reports)."""
    if not isinstance(default_storage, FileSystemStorage):
        return {}
    folder = Path(default_storage.location)
    while not folder.exists() and folder != folder.parent:  # media not written yet: its disk
        folder = folder.parent
    try:
        free_mb = shutil.disk_usage(folder).free // 2**20
    except OSError:
        return {}
    if free_mb >= settings.STUDIO_MIN_FREE_DISK_MB:
        return {}
    return {"storage_free_mb": free_mb, "storage_min_free_mb": settings.STUDIO_MIN_FREE_DISK_MB}
