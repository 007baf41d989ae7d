"""A sandbox embedded studio for the measuring scripts: its own var folder (database, media,
models), the in-memory broker, the demo model, migrated and installed, nothing of the user's touched."""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sandbox_studio(name: str, *, model: Path | None = None, **env: str) -> Path:
    """Set up Django on a fresh var folder and return it. `env` values may name it as {var}."""
    var = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="brandstudio.settings",
        SECRET_KEY=name,
        STUDIO_VAR_DIR=str(var),
        CELERY_BROKER_URL="memory://",
        HF_HUB_OFFLINE="1",
        STUDIO_DEFAULT_MODEL="demo-brand",
        STUDIO_PREVIEW_SECONDS="0",
        STUDIO_PALETTE_TABLES_DIR="",  # the memo: the same answers as the table, no minute to build it
    )
    if model is not None:
        os.environ["STUDIO_DEMO_MODEL_DIR"] = str(model.resolve())
    os.environ.update({key: value.format(var=var) for key, value in env.items()})
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    quiet = io.StringIO()  # a script's --json output must be all it prints
    call_command("migrate", verbosity=0, stdout=quiet)
    call_command("build_default_model", verbosity=0, stdout=quiet)
    return var
