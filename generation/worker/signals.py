"""Worker hooks: its own queue and the advertisement routing reads (generation/routing/), the default
model's preload, the jobs a previous life left running."""

import logging
import os
import threading
import time
from typing import Any

from celery.signals import celeryd_after_setup, worker_init, worker_process_init, worker_ready, worker_shutting_down
from django.conf import settings
from django.db import DatabaseError, connection

from ..jobs.lifecycle import RUN, jobs_reap_stale
from ..routing.workers import direct_queue, forget, touch

log = logging.getLogger(__name__)

# The worker's own pid, set in it before it forks its pool processes, which inherit it.
_worker_pid = 0
# The worker's node name where it takes jobs and so a queue of its own, set as _worker_pid is.
_routed_node = ""


@worker_init.connect
def remember_the_worker(**kwargs: Any) -> None:
    global _worker_pid
    _worker_pid = os.getpid()


@celeryd_after_setup.connect
def take_own_queue(sender: str, instance: Any, **kwargs: Any) -> None:
    """A worker that takes jobs (`-Q gpu`) also takes from a queue of its own, where routing sends
    the jobs of the models it holds (generation/routing/). Celery's documented way:
    https://docs.celeryq.dev/en/stable/userguide/signals.html#celeryd-after-setup"""
    global _routed_node
    queues = instance.app.amqp.queues
    if settings.CELERY_TASK_ROUTES[RUN]["queue"] in (queues.consume_from or {}):
        queues.select_add(direct_queue(sender))
        _routed_node = sender


@worker_shutting_down.connect
def stop_being_routed(sender: Any = None, **kwargs: Any) -> None:
    """A warm shutdown (a deploy's SIGTERM) finishes the job that runs: routing sends the worker no
    other, and the reaper sends again those waiting on its queue. From a thread of its own, as this
    runs in a signal handler that may have interrupted a query of the worker's."""
    if _routed_node:
        threading.Thread(target=_forget, args=(_routed_node,), name="stop-being-routed").start()


def _forget(node: str) -> None:
    try:
        forget(node=node)
    except DatabaseError:
        log.warning("Could not tell routing that %s is shutting down", node, exc_info=True)
    finally:
        connection.close()


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


@worker_process_init.connect
def start_advertising(**kwargs: Any) -> None:
    """In a worker that takes jobs, the pool process (where the models are loaded) advertises what
    it holds, then stamps its row every STUDIO_HEARTBEAT_SECONDS: a row not stamped within
    STUDIO_STALE_AFTER_SECONDS is a worker gone (generation/routing/)."""
    if _routed_node:
        threading.Thread(target=_advertise, args=(_routed_node,), name="advertise", daemon=True).start()


def _advertise(node: str) -> None:
    from .engines import advertise_for  # the models' module: in the pool process, after the fork

    advertise_for(node)
    while True:
        time.sleep(settings.STUDIO_HEARTBEAT_SECONDS)
        stamp(node)


def stamp(node: str) -> None:
    """Still here; the whole advertisement again where the last write failed or the row is missing
    (the database was reset)."""
    from .engines import advertise_for, advertised  # the models' module: in the pool process, after the fork

    try:
        if not advertised() or not touch(node=node):
            advertise_for(node)
    except DatabaseError:
        log.warning("Could not stamp %s for routing; trying again", node, exc_info=True)
        connection.close()


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
