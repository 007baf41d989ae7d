# Load the Celery app with Django so `delay_on_commit` and `shared_task` use it.
from .celery import app as celery_app

__all__ = ("celery_app",)
