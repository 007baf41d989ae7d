"""What the web image must run without torch: run it inside the web image (or a virtualenv with
requirements-web.txt only). It migrates a scratch SQLite database, runs Django's deploy checks,
imports every page, the admin, the API and the Celery tasks, runs the reaper once (what the
maintenance worker and beat do), and then fails if torch or another worker library was imported
or is installed at all.

    python deploy/check_web_side.py
"""

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

WORKER_ONLY = ("torch", "torchvision", "diffusers", "transformers", "spandrel", "cv2", "colour", "vtracer")


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    scratch = tempfile.mkdtemp(prefix="studio-web-check-")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="brandstudio.settings",
        SECRET_KEY="web-image-check-" + "x" * 40,
        STUDIO_VAR_DIR=scratch,
        DATABASE_URL=f"sqlite:///{scratch}/db.sqlite3",
        ALLOWED_HOSTS="studio.example.com",
        BEHIND_TLS_PROXY="1",
    )
    # Django and the studio load after the environment above is set: settings read it at import.
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("check", deploy=True, fail_level="WARNING")
    import brandstudio.celery
    import brandstudio.urls
    import generation.admin  # noqa: F401 (every admin page's imports)
    from generation import tasks

    tasks.reap_stale_jobs()  # what beat sends the maintenance worker every STUDIO_REAPER_SECONDS
    loaded = sorted(name for name in WORKER_ONLY if name in sys.modules)
    installed = sorted(name for name in WORKER_ONLY if importlib.util.find_spec(name) is not None)
    print(
        f"web side: {len(sys.modules)} modules loaded by {brandstudio.urls.__name__}, the admin, "
        f"the tasks and {brandstudio.celery.app.main}; worker libraries loaded: {loaded or 'none'}; "
        f"installed: {installed or 'none'}"
    )
    return 1 if loaded or (installed and "--allow-installed" not in sys.argv) else 0


if __name__ == "__main__":
    raise SystemExit(main())
