import socket

import pytest
from django.core.management import CommandError

from generation.management.commands.studio import _check_port_free, worker_command
from tests.processes import free_port


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
