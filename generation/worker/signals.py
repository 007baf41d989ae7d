"""Worker start-up hooks."""

import logging
import os
import threading
import time
from typing import Any

from celery.signals import worker_init, worker_process_init, worker_ready
from django.db import connection

from ..jobs.lifecycle import jobs_reap_stale

log = logging.getLogger(__name__)

# The worker's own pid, set in it before it forks its pool processes, which inherit it.
_worker_pid = 0


@worker_init.connect
def remember_the_worker(**kwargs: Any) -> None:
    global _worker_pid
    _worker_pid = os.getpid()


@worker_process_init.connect
def exit_with_the_worker(**kwargs: Any) -> None:
    """A pool process ends within half a second of its worker, even a worker killed -9 (as
    `./studio up` kills its children when it is killed itself): billiard's pool processes
    otherwise wait on a queue that a dead worker never closes. Its job, if any, goes back to
    the queue by the job's lease, as when a worker dies.

    The worker is the pid it had before the fork, not os.getppid() here: a pool process just
    forked when its worker died would read init's pid (1) and wait on it for ever, an orphan."""
    worker = _worker_pid or os.getppid()

    def watch() -> None:
        while os.getppid() == worker:
            time.sleep(0.5)
        log.warning("The worker (pid %d) is gone; this pool process exits", worker)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-the-worker", daemon=True).start()


@worker_process_init.connect
def preload_default_model(**kwargs: Any) -> None:
    """Load the default model in each new pool process, in the background, so the first job
    does not wait for it (a job that comes first waits on the engine lock instead).

    Torch is imported here, in the pool process, not in the parent before fork: CUDA must not
    be initialised before fork, and on CPU a child forked from a torch-importing parent ran
    the same pipeline a few percent slower (scripts/benchmark.py measures it). Maintenance-only workers
    set STUDIO_PRELOAD_ENGINE=0. Then the asset types' finishing is made ready (worker.finish.prepare_finishing).
    """
    if os.environ.get("STUDIO_PRELOAD_ENGINE", "1") == "1":
        threading.Thread(target=_preload, name="preload-default-model", daemon=True).start()


def _preload() -> None:
    # torch: loaded in the pool process, after the fork (see above)
    from .engines import preload_default_model
    from .finish import prepare_finishing

    try:
        preload_default_model()
        prepare_finishing()
    except Exception:
        log.exception("Finishing not prepared (upscalers, palette tables)")
    finally:
        connection.close()


@worker_ready.connect
def reap_own_orphans(sender: Any = None, **kwargs: Any) -> None:
    """A worker that just started runs nothing yet: any job still marked as running on it
    was left by a previous life of this worker (kill -9, crash), so take it back now
    instead of waiting for its heartbeat to go stale."""
    hostname = getattr(sender, "hostname", None)
    if hostname and (count := jobs_reap_stale(worker=hostname)):
        log.warning("Took back %d job(s) left running by a previous %s", count, hostname)
