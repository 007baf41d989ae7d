"""Start the embedded studio: web server and worker together, supervised.

`./studio up` runs this after installing; it is also fine to run by hand.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

RESTART_BACKOFF = 2.0
MAX_RESTARTS_PER_MINUTE = 5


def worker_command(*, name: str, beat: bool, schedule: str | None = None) -> list[str]:
    """The worker every size runs: one job at a time per process, on the gpu, training and maintenance
    queues (a team server can run training on a worker of its own: `-Q training`)."""
    command = [sys.executable, "-m", "celery", "-A", "brandstudio", "worker", "-Q", "gpu,training,maintenance"]
    command += ["--concurrency", "1", "--pool", "prefork", "-n", name, "--loglevel", "INFO"]
    if beat:
        command += ["-B"] + (["-s", schedule] if schedule else [])
    return command


def _check_port_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        # Like gunicorn: connections of a just-stopped studio in TIME_WAIT must not count as in use.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise CommandError(f"{host}:{port} is already in use; stop what runs there or pass --port.") from None


class Command(BaseCommand):
    help = "Set up and run the studio (web + worker) on one machine."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-worker", action="store_true", help="Run the web server only.")

    def handle(self, *args: Any, host: str, port: int, no_worker: bool, **options: Any) -> None:
        _check_port_free(host, port)
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("build_default_model")
        self._ensure_first_user()
        processes = {"web": self._web_command(host, port)}
        if not no_worker:
            # -B runs the beat scheduler (the stale-job reaper) inside this single worker.
            processes["worker"] = worker_command(name="gpu@%h", beat=True)
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

    def _web_command(self, host: str, port: int) -> list[str]:
        # Threads let progress polling go on while a download streams.
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "brandstudio.wsgi",
            "--bind",
            f"{host}:{port}",
            "--workers",
            "1",
            "--threads",
            "8",
            "--access-logfile",
            "-",
            "--graceful-timeout",
            "5",
        ]

    def _supervise(self, commands: dict[str, list[str]]) -> None:
        running = {name: subprocess.Popen(cmd) for name, cmd in commands.items()}
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        restarts: list[float] = []
        while not stopping:
            time.sleep(0.5)
            for name, proc in running.items():
                if proc.poll() is None or stopping:
                    continue
                restarts = [t for t in restarts if time.monotonic() - t < 60] + [time.monotonic()]
                if len(restarts) > MAX_RESTARTS_PER_MINUTE:
                    self.stderr.write(
                        f"{name} keeps exiting ({proc.returncode}); stopping the studio. See the log above."
                    )
                    stopping = True
                    break
                # A crashed or killed worker comes back; its start-up takes back the job it held.
                self.stderr.write(f"{name} exited with {proc.returncode}; restarting in {RESTART_BACKOFF:.0f} s")
                time.sleep(RESTART_BACKOFF)
                running[name] = subprocess.Popen(commands[name])
        for proc in running.values():
            proc.send_signal(signal.SIGTERM)
        for proc in running.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
