"""Test settings: the real services running on this machine (Postgres, Redis)."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Most tests run the 1 MB random-weight FLUX (fast); the demo brand model has its own tests.
os.environ.setdefault("STUDIO_DEFAULT_MODEL", "tiny-flux")
# No palette lookup tables (a minute of CPU each, built in the background): tests that want one build
# a small one (tests/test_palette_table.py).
os.environ.setdefault("STUDIO_PALETTE_TABLES_DIR", "")

from .settings import *  # noqa: E402,F403

STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The live server answers each request on a thread of its own: no connection may outlive it,
# or the test database cannot be dropped at the end of the run.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
if DATABASES["default"]["ENGINE"] == "brandstudio.sqlite":  # noqa: F405
    # A file, not the in-memory default: threads of one test share it the way processes share the studio's.
    _name = Path(DATABASES["default"]["NAME"])  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(_name.with_name(f"test-{_name.name}"))}  # noqa: F405
