"""A pool process and the worker that forked it: it must not outlive it, even when the worker
died while the pool process was still starting (the launcher test's orphan)."""

import os
import threading

from generation.worker import signals


def exits(monkeypatch, worker_pid: int) -> bool:
    """Whether a pool process whose worker had `worker_pid` exits at start-up (os._exit recorded)."""
    exited = threading.Event()
    monkeypatch.setattr(signals, "_worker_pid", worker_pid)
    monkeypatch.setattr(signals.os, "_exit", lambda code: exited.set())
    monkeypatch.setattr(signals.time, "sleep", lambda seconds: exited.wait(0.05))
    signals.exit_with_the_worker()
    return exited.wait(2)


def test_a_pool_process_whose_worker_died_before_it_started_exits_at_once(monkeypatch) -> None:
    # Its parent is now someone else (init, or here this test's parent): not the worker that forked it.
    assert exits(monkeypatch, worker_pid=os.getpid() + 100_000)


def test_a_pool_process_stays_while_its_worker_lives(monkeypatch) -> None:
    assert not exits(monkeypatch, worker_pid=os.getppid())


def test_the_worker_remembers_its_pid_before_it_forks(monkeypatch) -> None:
    monkeypatch.setattr(signals, "_worker_pid", 0)
    signals.remember_the_worker()
    assert signals._worker_pid == os.getpid()
