"""What answers when the studio is asked how it is, or cannot answer: the health check for load
balancers and monitoring, and the 500 handler that tells a database outage (503, try again) from a bug."""

import secrets
import sys

from django.conf import settings
from django.core.files.storage import default_storage
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
    503 (naming what failed) when not. ?workers=1 also names the workers that answer: for staff or
    the health token only (it names machines, and asking them holds a thread up to a second), and
    answered from a cache of a few seconds (ops.worker_names)."""
    if request.GET.get("workers") and not _may_ask_workers(request):
        return JsonResponse({"error": "Naming the workers takes staff or the health token."}, status=403)
    checks = {"database": _check_database(), "broker": _check_broker(), "storage": _check_storage()}
    body: dict[str, object] = {"status": "ok" if all(checks.values()) else "failing", **checks}
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


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler: a request that failed because the database does not answer gets a
    503 that says to try again (JSON on the API, a page that reads nothing from the database
    elsewhere); anything else is the usual 500."""
    if not isinstance(sys.exc_info()[1], OUTAGE):
        return defaults.server_error(request)
    return database_unavailable(request)


def database_unavailable(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        body = {"message": "The studio cannot reach its database just now; try again shortly.", "field": None}
        response: HttpResponse = JsonResponse(body, status=503)
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER)
    return response


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
