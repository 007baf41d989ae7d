"""Every API error is JSON {"message": ..., "field": ...}, whatever raised it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser
from ninja.types import DictStrAny

from ..jobs import limits
from ..stored import MissingFile


class Error(Schema):
    message: str
    field: str | None = None


# Every operation can answer these: unreadable body, no token, someone else's (or no such) id, bad input.
ERRORS: dict[int, Any] = {400: Error, 401: Error, 404: Error, 422: Error}
# Operations that read a body: too large, or not JSON.
BODY: dict[int, Any] = {**ERRORS, 413: Error, 415: Error}
LIMITED: dict[int, Any] = {**BODY, 429: Error}
JSON = "application/json"


class BodyRefused(Exception):
    def __init__(self, message: str, status: int = 415) -> None:
        super().__init__(message)
        self.status = status


class JsonParser(Parser):
    """Bodies are JSON and say so: another content type, or none, is a 415 rather than a guess."""

    def parse_body(self, request: HttpRequest) -> DictStrAny:
        if request.content_type != JSON:
            sent = f"not {request.content_type[:100]}" if request.content_type else "the request names none"
            raise BodyRefused(f"Send the body as JSON with Content-Type: {JSON} ({sent}).")
        return super().parse_body(request)


class FieldError(Exception):
    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.field, self.status = field, status


def install(api: NinjaAPI) -> None:
    """Register the handlers that turn each kind of failure into the JSON error body."""

    def error(request: HttpRequest, status: int, message: str, field: str | None = None) -> HttpResponse:
        return api.create_response(request, {"message": message, "field": field}, status=status)

    @api.exception_handler(NinjaValidationError)
    def _validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        first = exc.errors[0] if exc.errors else {}
        location = [str(part) for part in first.get("loc", []) if part not in ("body", "query", "path", "payload")]
        return error(request, 422, str(first.get("msg", "Invalid input.")), ".".join(location) or None)

    @api.exception_handler(AuthenticationError)
    def _unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return error(request, 401, "Send a valid personal API token: Authorization: Bearer <token>.")

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if isinstance(exc.__cause__, BodyRefused):  # ninja turns whatever the parser raises into a 400
            return error(request, exc.__cause__.status, str(exc.__cause__))
        return error(request, exc.status_code, str(exc))

    @api.exception_handler(RequestDataTooBig)
    def _too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0
        return error(request, 413, f"The body is over the {limit:,} bytes a request may carry.")

    @api.exception_handler(Http404)
    def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return error(request, 404, str(exc) if isinstance(exc, MissingFile) else "Not found (or not yours).")

    @api.exception_handler(FieldError)
    def _field_error(request: HttpRequest, exc: FieldError) -> HttpResponse:
        return error(request, exc.status, str(exc), exc.field)

    # Every submitting service checks the per-user limits itself, under a lock (limits.within_limits).
    @api.exception_handler(limits.QuotaExceeded)
    def _rate_limited(request: HttpRequest, exc: limits.QuotaExceeded) -> HttpResponse:
        response = error(request, 429, str(exc))
        response["Retry-After"] = str(exc.retry_after)
        return response
