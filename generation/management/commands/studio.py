"""Start the embedded studio: web server, worker and the beat scheduler together, supervised.

`./studio up` runs this after installing; it is also fine to run by hand.
"""

import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

RESTART_BACKOFF = 2.0
MAX_RESTARTS_PER_MINUTE = 5  # per process
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def worker_command(
    *, name: str, beat: bool = False, schedule: str | None = None, queues: str = "gpu,training,maintenance"
) -> list[str]:
    """The worker every size runs: one job at a time per process, on the gpu, training and maintenance
    queues (a team server can run training on a worker of its own: `-Q training`).

    `beat` embeds the scheduler, for a test's single worker only: the studio runs `beat_command`
    as a process of its own, so a worker that dies or restarts never takes (or leaves) a scheduler.
    """
    command = [sys.executable, "-m", "celery", "-A", "brandstudio", "worker", "-Q", queues]
    command += ["--concurrency", "1", "--pool", "prefork", "-n", name, "--loglevel", "INFO"]
    if beat:
        command += ["-B"] + (["-s", schedule] if schedule else [])
    return command


def beat_command(var_dir: Path) -> list[str]:
    """The one scheduler (the stale-job reaper's clock), its schedule file under var/. Its pidfile
    makes a second scheduler on the same var/ (a second `./studio up` on another port) refuse to
    start while this one lives; celery ignores a pidfile whose process is gone."""
    command = [sys.executable, "-m", "celery", "-A", "brandstudio", "beat", "--loglevel", "INFO"]
    return command + ["-s", str(var_dir / "celerybeat-schedule"), "--pidfile", str(var_dir / "celerybeat.pid")]


def web_command(host: str, port: int, workers: int) -> list[str]:
    # One worker per core (STUDIO_WEB_WORKERS); threads let progress polling go on while a download streams.
    command = [sys.executable, "-m", "gunicorn", "brandstudio.wsgi", "--bind", f"{host}:{port}"]
    command += ["--config", str(settings.BASE_DIR / "gunicorn.conf.py")]  # what the containers read too
    command += ["--workers", str(workers), "--threads", "8", "--graceful-timeout", "5"]
    return command + ["--access-logfile", "-"]


def worker_env() -> dict[str, str]:
    """The worker's environment: its torch uses every core but one on the CPU, so the web server
    on the same machine keeps a core while a job renders (with all of them taken, every page and
    status poll waited behind the render). STUDIO_WORKER_THREADS, or OMP_NUM_THREADS, to choose."""
    threads = os.environ.get("STUDIO_WORKER_THREADS") or os.environ.get("OMP_NUM_THREADS")
    threads = threads or str(max(1, (os.cpu_count() or 1) - 1))
    return {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


def worker_nice() -> int:
    """How much lower the worker's CPU priority is than the web server's (STUDIO_WORKER_NICE, 10):
    on a machine that runs both, a designer's click is served first and the render takes the rest."""
    return int(os.environ.get("STUDIO_WORKER_NICE", "10"))


def start_child(command: list[str], env: dict[str, str] | None = None, nice: int = 0) -> subprocess.Popen[bytes]:
    """A supervised process in a process group of its own (so what it forks can be killed with it)
    that dies with the launcher, even when the launcher is killed -9."""
    return subprocess.Popen(command, process_group=0, preexec_fn=_die_with(os.getpid(), nice), env=env)


def _die_with(parent: int, nice: int = 0) -> Callable[[], None]:
    # Looked up here, in the parent: the child, between fork and exec, should only make the call.
    prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None

    def preexec() -> None:
        if prctl is not None:
            # The kernel sends SIGKILL when the launcher dies; celery's pool processes and gunicorn's
            # workers in turn stop when their own parent goes.
            prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != parent:  # the launcher died before the line above took effect
            os._exit(1)
        if nice:
            os.nice(nice)

    return preexec


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever is left of a child's process group (gunicorn workers, a pool process)."""
    with contextlib.suppress(ProcessLookupError):  # nothing left
        os.killpg(proc.pid, signal.SIGKILL)


def _check_port_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        # Like gunicorn: connections of a just-stopped studio in TIME_WAIT must not count as in use.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise CommandError(f"{host}:{port} is already in use; stop what runs there or pass --port.") from None


class Command(BaseCommand):
    help = "Set up and run the studio (web + worker + beat) on one machine."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-worker", action="store_true", help="Run the web server only (no worker, no beat).")

    def handle(self, *args: Any, host: str, port: int, no_worker: bool, **options: Any) -> None:
        _check_port_free(host, port)
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("build_default_model")
        self._ensure_first_user()
        processes = {"web": web_command(host, port, _web_workers())}
        if not no_worker:
            processes["worker"] = worker_command(name="gpu@%h")
            processes["beat"] = beat_command(settings.VAR_DIR)  # exactly one scheduler, whatever restarts
        self.stdout.write(self.style.SUCCESS(f"Brand Studio is up at http://{host}:{port}/  (Ctrl+C stops it)"))
        self._supervise(processes)

    def _ensure_first_user(self) -> None:
        User = get_user_model()
        if User.objects.exists():
            return
        username = os.environ.get("STUDIO_USERNAME", "designer")
        password = os.environ.get("STUDIO_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, password=password, email="")
        credentials = settings.VAR_DIR / "first-user.txt"
        credentials.write_text(f"username: {username}\npassword: {password}\n")
        credentials.chmod(0o600)
        self.stdout.write(
            self.style.WARNING(
                f"Created the first user.\n  username: {username}\n  password: {password}\n"
                f"(also saved in {credentials}; change it in the admin)"
            )
        )

    def _supervise(self, commands: dict[str, list[str]]) -> None:
        envs, nices = {"worker": worker_env()}, {"worker": worker_nice()}
        running = {name: start_child(cmd, envs.get(name), nices.get(name, 0)) for name, cmd in commands.items()}
        restarts: dict[str, list[float]] = {name: [] for name in commands}
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping:
            time.sleep(0.5)
            for name, proc in running.items():
                if proc.poll() is None or stopping:
                    continue
                kill_group(proc)  # the dead master's workers or pool process must not outlive it
                now = time.monotonic()
                restarts[name] = [t for t in restarts[name] if now - t < 60] + [now]
                if len(restarts[name]) > MAX_RESTARTS_PER_MINUTE:
                    self.stderr.write(
                        f"{name} keeps exiting ({proc.returncode}); stopping the studio. See the log above."
                    )
                    stopping = True
                    break
                # A crashed or killed worker comes back; its start-up takes back the job it held.
                self.stderr.write(f"{name} exited with {proc.returncode}; restarting in {RESTART_BACKOFF:.0f} s")
                time.sleep(RESTART_BACKOFF)
                running[name] = start_child(commands[name], envs.get(name), nices.get(name, 0))
        self._stop(list(running.values()))

    def _stop(self, children: list[subprocess.Popen[bytes]]) -> None:
        # SIGTERM to each master only: a worker finishes its job (warm shutdown), gunicorn its requests.
        for proc in children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            kill_group(proc)


def _web_workers() -> int:
    workers: int = settings.STUDIO_WEB_WORKERS
    if workers < 1:
        raise CommandError(f"STUDIO_WEB_WORKERS must be 1 or more (it is {workers}).")
    return workers
