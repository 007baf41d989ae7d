"""The embedded size's SQLite backend: writing transactions queue on a file lock, so a writer goes in
as soon as the one before commits, many threads write without "database is locked", a rolled-back
transaction lets the next one in, and a writer held too long is an error, not a hang."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import OperationalError, connections, transaction

ALIAS = "sqlite_writes"


@pytest.fixture
def database(tmp_path: Path, django_db_blocker) -> Iterator[Path]:
    """A SQLite file opened as the studio's embedded settings open it, under an alias of its own."""
    path = tmp_path / "db.sqlite3"
    options = {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    config = {"ENGINE": "brandstudio.sqlite", "NAME": str(path), "OPTIONS": options}
    defaults = connections.configure_settings({"default": config})["default"]
    connections.settings[ALIAS] = defaults
    with django_db_blocker.unblock():  # our own database, not the test one
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("CREATE TABLE t (n INTEGER)")
        connections[ALIAS].close()
        yield path
        connections[ALIAS].close()
    del connections[ALIAS]  # this thread's connection object, opened on this test's file
    del connections.settings[ALIAS]


def write(sql: str, *, hold: float = 0.0, fail: bool = False) -> None:
    """One atomic() block on this thread's connection: a statement, a pause, then commit (or roll back)."""
    connection = connections[ALIAS]
    try:
        with transaction.atomic(using=ALIAS):
            with connection.cursor() as cursor:
                cursor.execute(sql)
            time.sleep(hold)
            if fail:
                raise RuntimeError("roll back")
    except RuntimeError:
        pass
    finally:
        connection.close()


def rows() -> int:
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM t")
        return cursor.fetchone()[0]


def holding(seconds: float) -> threading.Thread:
    holder = threading.Thread(target=write, args=("INSERT INTO t VALUES (0)",), kwargs={"hold": seconds})
    holder.start()
    time.sleep(0.05)  # it is in its transaction
    return holder


def test_a_waiting_writer_goes_in_as_soon_as_the_one_before_commits(database: Path) -> None:
    holder = holding(0.3)
    started = time.monotonic()
    write("INSERT INTO t VALUES (1)")
    waited = time.monotonic() - started
    holder.join()
    # It waited for the holder (about 0.25 s left), and no busy-handler sleep of up to 100 ms beyond it.
    assert 0.2 < waited < 0.3 and rows() == 2


def test_many_threads_write_without_database_is_locked(database: Path) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for k in range(10):
                write(f"INSERT INTO t VALUES ({n * 100 + k})")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and rows() == 120


def test_a_rolled_back_transaction_lets_the_next_writer_in(database: Path) -> None:
    write("INSERT INTO t VALUES (1)", fail=True)
    started = time.monotonic()
    write("INSERT INTO t VALUES (2)")
    assert time.monotonic() - started < 0.1 and rows() == 1


def test_a_writer_held_past_the_timeout_is_a_locked_error_not_a_hang(database: Path) -> None:
    holder = holding(0.6)
    connections[ALIAS].settings_dict["OPTIONS"]["timeout"] = 0.2  # this thread's connection
    with pytest.raises(OperationalError, match="database is locked"):
        write("INSERT INTO t VALUES (1)")
    holder.join()
