"""Django's SQLite backend with one writing transaction at a time, queued on a file lock.

SQLite lets one writer in at a time and makes the others wait in its busy handler, which sleeps
between tries (1, 2, 5, 10 … 100 ms): behind a few writers a submission waited hundreds of ms
though each holds the lock for a few ms (the embedded load test: p95 400 ms). Here a transaction
(`atomic`, BEGIN IMMEDIATE) first takes an flock on a file beside the database, shared by every
process of the studio (web, worker, scheduler), and tries again every fraction of a millisecond:
the next writer goes in as soon as the last one commits. Writes outside a transaction (one
statement, autocommit) still meet SQLite's own wait, briefly.
"""

from __future__ import annotations

import fcntl
import os
import time
from typing import Any

from django.db import OperationalError
from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock_fd: int | None = None
        self._locked = False

    def _start_transaction_under_autocommit(self) -> None:
        self._lock_writes()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
        except BaseException:
            self._unlock_writes()
            raise

    def _commit(self) -> Any:
        try:
            return super()._commit()  # type: ignore[misc]
        finally:
            self._unlock_writes()

    def _rollback(self) -> Any:
        try:
            return super()._rollback()  # type: ignore[misc]
        finally:
            self._unlock_writes()

    def _close(self) -> Any:
        try:
            return super()._close()  # type: ignore[misc]
        finally:
            self._unlock_writes()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def _lock_writes(self) -> None:
        if self._locked or self.is_in_memory_db():
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(f"{self.settings_dict['NAME']}.writelock", os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
        pause = 0.0002
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise OperationalError("database is locked (another writer held it past the timeout)") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.002)
        self._locked = True

    def _unlock_writes(self) -> None:
        if self._locked and self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        self._locked = False
