import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brandstudio.settings")
application = get_wsgi_application()


def _warm() -> None:
    """Import every view module and the API (through the URLconf), build the URL maps and the
    Celery producer pool (the broker transport's imports) as the web worker starts, not in its
    first requests: in a burst of submissions just after a (re)start, each worker's first ones
    otherwise queued behind about 350 ms of imports. Nothing here connects to anything."""
    from django.urls import reverse

    from brandstudio.celery import app as celery_app

    reverse("studio")
    reverse("api-v1:openapi-json")
    celery_app.finalize(auto=True)
    celery_app.amqp.producer_pool  # noqa: B018 (the property builds the pool: the transport is imported)


_warm()
