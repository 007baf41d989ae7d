import os
import signal
import socket
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError

from generation.management.commands.studio import (
    _check_port_free,
    beat_command,
    web_command,
    worker_command,
    worker_env,
)
from tests.processes import ROOT, base_env, free_port, wait_for


def test_a_port_with_a_listener_is_refused_with_a_clear_message() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with pytest.raises(CommandError, match=f"127.0.0.1:{port} is already in use; .* pass --port"):
            _check_port_free("127.0.0.1", port)


def test_a_free_port_passes() -> None:
    _check_port_free("127.0.0.1", free_port())


def test_the_worker_runs_one_job_at_a_time_on_the_gpu_queue() -> None:
    command = worker_command(name="gpu@%h", beat=True)
    assert command[command.index("-Q") + 1] == "gpu,training,maintenance"
    assert command[command.index("--concurrency") + 1] == "1" and "prefork" in command and "-B" in command


def test_the_web_server_runs_a_worker_per_core_unless_told(settings) -> None:
    command = web_command("127.0.0.1", 8000, settings.STUDIO_WEB_WORKERS)
    assert command[command.index("--workers") + 1] == str(os.cpu_count())
    assert command[command.index("--threads") + 1] == "8"


def test_the_web_server_keeps_idle_connections_longer_than_clients_do() -> None:
    # A server closing an idle keep-alive connection as a request arrives drops that request; httpx
    # (the CLI, the load test) expires its idle connections after 5 s, so the server must wait longer.
    import runpy

    command = web_command("127.0.0.1", 8000, 1)
    config = runpy.run_path(command[command.index("--config") + 1])  # as gunicorn reads it
    assert config["keepalive"] > 5


def test_the_workers_torch_leaves_a_core_to_the_web_server_unless_told(monkeypatch) -> None:
    monkeypatch.delenv("STUDIO_WORKER_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert worker_env()["OMP_NUM_THREADS"] == str(max(1, (os.cpu_count() or 1) - 1))
    monkeypatch.setenv("STUDIO_WORKER_THREADS", "3")
    assert worker_env()["OMP_NUM_THREADS"] == worker_env()["MKL_NUM_THREADS"] == "3"


def test_a_worker_started_with_omp_num_threads_renders_with_that_many_torch_threads() -> None:
    env = {**worker_env(), "STUDIO_WORKER_THREADS": "1"}
    env = {**env, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "1"


def test_the_scheduler_is_a_process_of_its_own_with_its_files_under_var(tmp_path) -> None:
    command = beat_command(tmp_path)
    assert command[command.index("-A") + 2] == "beat"
    assert command[command.index("-s") + 1] == str(tmp_path / "celerybeat-schedule")
    assert command[command.index("--pidfile") + 1] == str(tmp_path / "celerybeat.pid")


def test_the_team_server_runs_exactly_one_scheduler_as_its_own_service() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    commands = {name: str(service.get("command", "")) for name, service in compose["services"].items()}
    assert [name for name, command in commands.items() if " beat" in command] == ["beat"]
    assert not any(" -B" in command for command in commands.values())
    assert compose["services"]["beat"].get("deploy", {}).get("replicas", 1) == 1


# --- End to end: the launcher's processes, killed one by one.


def studio_processes(var_dir: Path) -> dict[str, list[int]]:
    """The processes of one embedded studio (found by its var/ in their environment), by kind."""
    mine: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        try:
            if f"STUDIO_VAR_DIR={var_dir}".encode() not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):  # not a process, or gone, or not ours
            continue
        if "<defunct>" not in command and command:
            mine[int(entry.name)] = (parent, command)
    kinds: dict[str, list[int]] = {}
    for pid, (parent, command) in mine.items():
        kind = _kind(command)
        if kind in ("web", "worker") and _kind(mine.get(parent, (0, ""))[1]) == kind:
            kind += " child"  # a gunicorn worker, a celery pool process: forked, same command line
        kinds.setdefault(kind, []).append(pid)
    return kinds


def survivors(var_dir: Path) -> str:
    """What of the studio is still alive: each process with its parent, state and command line."""
    lines = []
    for kind, pids in studio_processes(var_dir).items():
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:160]
            except OSError:
                continue
            lines.append(f"{kind} {pid} (parent {fields[1]}, state {fields[0]}): {command}")
    return "\n".join(lines) or "none by now"


def _kind(command: str) -> str:
    for marker, kind in ((" studio", "launcher"), ("gunicorn", "web"), (" worker ", "worker"), (" beat ", "beat")):
        if marker in command:
            return kind
    return "other"


STEADY = {"launcher": 1, "web": 1, "web child": 2, "worker": 1, "worker child": 1, "beat": 1}


def steady(var_dir: Path) -> dict[str, list[int]] | None:
    kinds = studio_processes(var_dir)
    return kinds if {kind: len(pids) for kind, pids in kinds.items()} == STEADY else None


def replaced(var_dir: Path, kind: str, killed: int) -> dict[str, list[int]] | None:
    """One of each kind again, the killed one (and, by the counts, what it had forked) gone."""
    kinds = steady(var_dir)
    return kinds if kinds and killed not in kinds[kind] else None


@pytest.mark.e2e
def test_each_process_killed_comes_back_alone_and_none_outlive_the_launcher(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    env = base_env(
        DJANGO_SETTINGS_MODULE="brandstudio.settings",
        SECRET_KEY="e2e",
        STUDIO_VAR_DIR=str(var_dir),
        STUDIO_PASSWORD="embedded-pass",
        STUDIO_WEB_WORKERS="2",
        STUDIO_PRELOAD_ENGINE="0",  # no model in memory: this is about processes
    )
    log = tmp_path / "studio.log"
    command = [sys.executable, "manage.py", "studio", "--port", str(free_port())]
    launcher = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        before = wait_for(lambda: steady(var_dir), timeout=120, what=f"the studio's processes\n{log.read_text()}")
        for kind in ("web", "worker", "beat", "worker child"):
            killed = before[kind][0]
            os.kill(killed, signal.SIGKILL)
            before = wait_for(
                partial(replaced, var_dir, kind, killed), timeout=60, what=f"a new {kind} alone\n{log.read_text()}"
            )
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait()
        try:
            wait_for(lambda: not studio_processes(var_dir), timeout=15, what="no orphans")
        except AssertionError as exc:  # which outlived it, said as they stand after the wait
            raise AssertionError(f"{exc}: {survivors(var_dir)}") from None
    finally:
        for pids in studio_processes(var_dir).values():
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
        if launcher.poll() is None:
            launcher.kill()
