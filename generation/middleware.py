"""CORS for the API, for the Figma plugin only.

A Figma plugin's UI runs in an iframe whose origin is "null". The API answers that origin,
without credentials: calls must carry a token, and cookies are never sent or honoured
across origins. Other origins get no CORS headers, so browsers keep them out.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from .control.inputs import MAX_BYTES
from .uploads import bytes_label

API_PREFIX = "/api/v1/"
ALLOWED_ORIGINS = {"null"}


def api_cors(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        origin = request.headers.get("Origin")
        if not request.path.startswith(API_PREFIX) or origin not in ALLOWED_ORIGINS:
            return get_response(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = HttpResponse(status=204)  # the preflight: nothing runs
            response["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
            response["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response["Access-Control-Max-Age"] = "600"
        else:
            response = get_response(request)
        response["Access-Control-Allow-Origin"] = "null"
        response["Vary"] = "Origin"
        return response

    return middleware


# The studio's pages load only their own scripts and styles (htmx, studio.js, studio.css):
# no inline script or style, so this policy costs nothing and stops injected markup running.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
        "form-action 'self' https://login.microsoftonline.com",
    ]
)
# Third-party pages served here that carry inline code of their own.
CSP_EXEMPT = ("/api/v1/docs", "/admin/")


def content_security_policy(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        if not request.path.startswith(CSP_EXEMPT):
            response.setdefault("Content-Security-Policy", CSP)
        return response

    return middleware


# The most an API request's body may carry: its largest upload (an input image) and the multipart
# form around it. JSON bodies are held to DATA_UPLOAD_MAX_MEMORY_SIZE, far below.
API_MAX_BODY = MAX_BYTES + 2**20


def api_body_limit(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Refuse an API body past the limit by its Content-Length, before any of it is read: parsed,
    a multipart upload is written whole to a temporary file before the view can look at its size.
    (Without a Content-Length, WSGI reads no body at all.)"""

    def middleware(request: HttpRequest) -> HttpResponse:
        if request.path.startswith(API_PREFIX) and _content_length(request) > API_MAX_BODY:
            message = f"The body is over {bytes_label(API_MAX_BODY)}: an input image may be {bytes_label(MAX_BYTES)}."
            return JsonResponse({"message": message, "field": None}, status=413)
        return get_response(request)

    return middleware


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
