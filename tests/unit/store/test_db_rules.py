"""store.db's two rules for every caller: `store_failure` (a driver or pool failure as the store's coded
error: 508 unreachable/locked/timed out, else 507 for a write, 504 for a read) and `WriterLock` (SQLite's
one writer: queued in-process, across processes through an flock; never re-entered; WriterBusy instead of
waiting when asked)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc

from store.db import WriterBusy, WriterLock, mapped_errors, store_failure
from store.errors import DatabaseUnavailable, DatabaseWriteError, StoreError
from tests.integration.store.failures import wait_until


class _Driver(Exception):
    """A driver's exception (sqlite3 or psycopg), as SQLAlchemy wraps it in `orig`."""


def _operational(text: str, invalidated: bool = False) -> sa_exc.OperationalError:
    return sa_exc.OperationalError("SELECT 1", {}, _Driver(text), connection_invalidated=invalidated)


UNREACHABLE = [
    _operational("database is locked"),
    _operational("unable to open database file"),
    _operational('connection failed: could not connect to server "127.0.0.1"'),
    _operational("canceling statement due to lock timeout"),
    _operational("server closed the connection unexpectedly"),
    _operational("SSL SYSCALL error: EOF detected", invalidated=True),
    sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached, connection timed out"),
]
FAILED = [
    _operational("disk I/O error"),
    sa_exc.IntegrityError("INSERT", {}, _Driver("UNIQUE constraint failed: accounts.username")),
    sa_exc.DatabaseError("SELECT", {}, _Driver("database disk image is malformed")),
    sa_exc.ProgrammingError("SELECT", {}, _Driver("no such table: ghosts")),
    sa_exc.InvalidRequestError("a statement SQLAlchemy refused"),
]


@pytest.mark.parametrize("writing", [False, True])
@pytest.mark.parametrize("error", UNREACHABLE, ids=lambda e: str(e)[:40])
def test_an_unreachable_locked_or_timed_out_database_is_508(error: Exception, writing: bool) -> None:
    failure = store_failure(error, writing)
    assert type(failure) is DatabaseUnavailable
    assert (failure.code, failure.status_text) == (508, "DATABASE ERROR")


@pytest.mark.parametrize("error", FAILED, ids=lambda e: str(e)[:40])
def test_any_other_failure_is_507_for_a_write_and_504_for_a_read(error: Exception) -> None:
    write, read = store_failure(error, writing=True), store_failure(error, writing=False)
    assert type(write) is DatabaseWriteError and (write.code, write.status_text) == (507, "DATABASE ERROR")
    assert type(read) is StoreError and (read.code, read.status_text) == (504, "DATABASE ERROR")


def test_mapped_errors_keeps_the_cause_and_lets_the_stores_own_errors_through() -> None:
    error = _operational("database is locked")
    with pytest.raises(DatabaseUnavailable) as raised, mapped_errors(writing=True):
        raise error
    assert raised.value.__cause__ is error
    refusal = DatabaseWriteError("already a store error")
    with pytest.raises(DatabaseWriteError) as passed, mapped_errors(writing=False):
        raise refusal
    assert passed.value is refusal
    with pytest.raises(KeyError), mapped_errors(writing=False):
        raise KeyError("a bug stays a bug")


def test_a_held_lock_refuses_a_caller_that_will_not_wait() -> None:
    lock = WriterLock()
    refused: list[BaseException] = []

    def try_once() -> None:
        try:
            with lock.held(wait=False):
                pass
        except WriterBusy as exc:
            refused.append(exc)

    with lock.held():
        other = threading.Thread(target=try_once)
        other.start()
        other.join(10)
    assert [str(exc) for exc in refused] == ["SQLite writer busy"] and lock.waiting == 0
    with lock.held(wait=False):  # free again
        pass


def test_a_write_inside_a_write_on_one_thread_is_refused_not_a_deadlock() -> None:
    lock = WriterLock()
    with lock.held(), pytest.raises(RuntimeError, match="wait for itself"), lock.held():
        pass
    with lock.held():
        pass


def test_a_waiting_thread_is_counted_and_goes_on_when_the_lock_is_free() -> None:
    lock = WriterLock()
    entered = threading.Event()

    def write() -> None:
        with lock.held():
            entered.set()

    writer = threading.Thread(target=write)
    with lock.held():
        writer.start()
        wait_until(lambda: lock.waiting == 1, "the second writer queued")
        assert not entered.is_set()
    writer.join(10)
    assert entered.is_set() and lock.waiting == 0


def test_two_locks_on_one_file_exclude_each_other_like_two_processes(tmp_path: Path) -> None:
    """Each WriterLock opens `<database>.writer` itself, so two of them behave as two processes do."""
    database = str(tmp_path / "ivrgate.db")
    first, second = WriterLock(database), WriterLock(database)
    try:
        with first.held(), pytest.raises(WriterBusy, match="another process"), second.held(wait=False):
            pass
        entered = threading.Event()

        def write() -> None:
            with second.held():
                entered.set()

        writer = threading.Thread(target=write)
        with first.held():
            writer.start()
            wait_until(lambda: second.waiting == 1, "the other lock queued on the file")
            assert not entered.is_set()
        writer.join(10)
        assert entered.is_set()
        assert (tmp_path / "ivrgate.db.writer").exists()
    finally:
        first.close()
        second.close()
