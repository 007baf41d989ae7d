import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brandstudio.settings")

app = Celery("brandstudio")
# All Celery settings live in settings.py under the CELERY_ prefix.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
