"""Worker start-up hooks."""

import logging
import os
from typing import Any

from celery.signals import worker_init, worker_ready

log = logging.getLogger(__name__)


@worker_init.connect
def preload_engine_modules(**kwargs: Any) -> None:
    # Import torch and diffusers once in the parent so each forked pool process starts warm.
    # Only imports: CUDA must not be initialised before fork. Maintenance-only workers skip it.
    if os.environ.get("STUDIO_PRELOAD_ENGINE", "1") == "1":
        import generation.engine.flux  # noqa: F401


@worker_ready.connect
def reap_own_orphans(sender: Any = None, **kwargs: Any) -> None:
    """A worker that just started runs nothing yet: any job still marked as running on it
    was left by a previous life of this worker (kill -9, crash), so take it back now
    instead of waiting for its heartbeat to go stale."""
    from .services import jobs_reap_stale

    hostname = getattr(sender, "hostname", None)
    if hostname and (count := jobs_reap_stale(worker=hostname)):
        log.warning("Took back %d job(s) left running by a previous %s", count, hostname)
