"""Failure injection for the fronts' database tests: driver errors raised where the driver would raise them
(before a matching statement reaches the database), on SQLite and PostgreSQL alike, and a wait for the
writer lock's queue."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import event

from store.db import Database


def locked_error(db: Database) -> Exception:
    """The driver's error for a database that is locked now (the store answers 508)."""
    if db.dialect == "sqlite":
        return sqlite3.OperationalError("database is locked")
    return psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")


def broken_error(db: Database) -> Exception:
    """The driver's error for a statement the database failed (the store answers 504 or 507)."""
    if db.dialect == "sqlite":
        return sqlite3.OperationalError("disk I/O error")
    return psycopg.errors.DataCorrupted("invalid page in block 7 of relation base/16384/16385")


@contextmanager
def failing(db: Database, words: str, error: Exception) -> Iterator[None]:
    """Every statement containing `words` (case-insensitive) raises `error` in the driver while the block
    runs; the others run as usual."""

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if words.lower() in statement.lower():
            raise error

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    """Return as soon as `condition()` holds (checked every few milliseconds); AssertionError naming
    `what` when it still does not after `timeout_s` (a hang, not a speed limit)."""
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        pause.wait(0.005)
