from django.conf import settings
from django.http import HttpRequest


def studio(request: HttpRequest) -> dict[str, object]:
    return {"entra_enabled": settings.ENTRA_ENABLED, "local_login_enabled": settings.LOCAL_LOGIN_ENABLED}
