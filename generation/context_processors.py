from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .auth import is_reviewer


def studio(request: HttpRequest) -> dict[str, object]:
    return {
        "entra_enabled": settings.ENTRA_ENABLED,
        "local_login_enabled": settings.LOCAL_LOGIN_ENABLED,
        # The Review link: asked only where a page shows the menu (a query for a designer).
        "is_reviewer": SimpleLazyObject(lambda: is_reviewer(getattr(request, "user", None))),
    }
