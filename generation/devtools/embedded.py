"""Django in the embedded configuration for the benchmark scripts: SQLite, local media and the
file broker in a temporary folder, so a script needs nothing running and leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path


def embedded_django(var: Path, *, broker: str = "", **env: str) -> None:
    """Set up Django under `var` and migrate its database. `broker`: a Redis URL to use instead
    of the file broker (as a team server runs); `env`: more settings, as environment variables."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="brandstudio.settings",
        SECRET_KEY="benchmark",
        STUDIO_VAR_DIR=str(var),
        HF_HUB_OFFLINE="1",
        **env,
    )
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("CELERY_BROKER_URL", None)
    if broker:
        os.environ["CELERY_BROKER_URL"] = broker
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
