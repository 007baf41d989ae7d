"""Start real studio processes (Celery workers, the embedded launcher) for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from django.conf import settings
from django.db import connection

from generation.management.commands.studio import worker_command

ROOT = Path(__file__).resolve().parent.parent
# Variables of the test process that must not leak into a child configured on its own.
STUDIO_VARS = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "MEDIA_ROOT",
    "STUDIO_MODELS_DIR",
    "STUDIO_VAR_DIR",
    "STUDIO_DEFAULT_MODEL",
)


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in STUDIO_VARS and not k.startswith("PYTEST")}
    env.update(PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", LOG_LEVEL="INFO")
    env.update(extra)
    return env


def test_database_url() -> str:
    """The test database pytest-django created, for a worker in another process."""
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def worker_env(var_dir: Path, **extra: str) -> dict[str, str]:
    return base_env(
        DJANGO_SETTINGS_MODULE="brandstudio.settings_test",
        DATABASE_URL=test_database_url(),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        STUDIO_VAR_DIR=str(var_dir),
        STUDIO_MODELS_DIR=str(settings.STUDIO_MODELS_DIR),
        **extra,
    )


def wait_for(predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}")


class Worker:
    """A real `celery worker` process group whose log is kept for the assertions."""

    def __init__(self, env: dict[str, str], log: Path, *, name: str, beat: bool = False, **options: str) -> None:
        self.log = log
        command = worker_command(name=name, beat=beat, schedule=str(log.with_suffix(".beat")), **options)
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_for(lambda: " ready." in self.output() or self.proc.poll() is not None, timeout=90, what="the worker")
        assert self.proc.poll() is None, self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """kill -9 the whole worker: main process, pool process, beat."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def worker(
    env: dict[str, str], log: Path, *, name: str = "gpu@e2e", beat: bool = False, **options: str
) -> Iterator[Worker]:
    """`options`: worker_command's, e.g. queues="gpu" for a worker that takes jobs only."""
    w = Worker(env, log, name=name, beat=beat, **options)
    try:
        yield w
    finally:
        w.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ended(job):  # noqa: ANN001, ANN201 - a GenerationJob, refreshed, once it has ended
    job.refresh_from_db()
    return job if job.is_ended else None


def flush_broker() -> None:
    """An empty broker database, so no message of an earlier test is picked up."""
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


class RedisServer:
    """A Redis of the test's own, run as a plain Redis runs: no append-only file, no save points,
    so a kill -9 loses every message it held (the shared Redis of the other tests stays up)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        log = (self.folder / "redis.log").open("ab")
        self.proc = subprocess.Popen([*command, "--dir", str(self.folder)], stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.answers, timeout=20, what="Redis")

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()


@contextmanager
def sending_to(broker_url: str) -> Iterator[None]:
    """The test process's own sends (job submissions) go to `broker_url` (Celery reads
    CELERY_BROKER_WRITE_URL before its settings), its connection pools taken anew on the way in and out."""
    from brandstudio.celery import app

    def fresh_pools() -> None:
        # Not closed: kombu keeps one pool per broker URL for the whole process, and the next
        # test's sends to the usual broker take that pool again.
        app._pool = None
        app.amqp._producer_pool = None

    before = os.environ.get("CELERY_BROKER_WRITE_URL")
    os.environ["CELERY_BROKER_WRITE_URL"] = broker_url
    fresh_pools()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CELERY_BROKER_WRITE_URL", None)
        else:
            os.environ["CELERY_BROKER_WRITE_URL"] = before
        fresh_pools()


class TcpProxy:
    """Postgres behind a switch, for a worker whose DATABASE_URL names the proxy's port: `cut()`
    drops every connection and refuses new ones (the database unreachable, as in an outage or a
    failover), `restore()` lets them through again."""

    def __init__(self, target_port: int) -> None:
        self.target_port, self.port = target_port, free_port()
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        if self.listener is not None:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() waiting on it
            self.listener.close()
            self.listener = None
        with self.lock:
            for sock in self.sockets:
                _close(sock)
            self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.sockets |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
