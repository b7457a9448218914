"""Connecting to the store: SQLite (WAL) in the data directory by default, PostgreSQL by URL; migrations.

    db = Database.open(resolve_url("", data_dir))
    db.upgrade()                       # alembic upgrade head
    with db.transaction() as session:  # one write transaction; commits on success, rolls back on error
        ...
    with db.read() as session:         # one read-only transaction
        ...

`db.transaction()` and `db.read()` are the one way every caller (the gateway, v1, the GUI, the CLI, the
workers, the SMS sender and inbound handler, the callback sender) opens the store, so two rules hold for
all of them:

- **The writer lock.** SQLite has one writer. Every `db.transaction()` on SQLite first takes the
  database's `WriterLock`: a queue in this process and an flock on `<database>.writer` across the
  processes of this gateway (cheaper than sqlite3's sleeping busy handler, whose waits grow to tens of
  milliseconds), then starts with BEGIN IMMEDIATE, so a read-then-write (a balance check, a claim) cannot
  interleave with another writer. `transaction(wait=False)` raises WriterBusy instead of queueing (the
  event loop's callers move the work to a thread). PostgreSQL has no such lock: its row locks do the work.
- **Error mapping.** A driver or pool failure leaves either block as a coded store error
  (`store_failure`): 508 DATABASE ERROR when the database cannot be reached, is locked or timed out
  (DatabaseUnavailable), else 507 for a failed write (DatabaseWriteError, rolled back: nothing was
  written) and 504 for a failed read (StoreError). The store's own errors pass through unchanged. So no
  front answers a database failure with a 500 and a traceback.

Read-only work uses `db.read()`, a deferred transaction that never waits for writers.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from store.errors import DatabaseUnavailable, DatabaseWriteError, StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")

ENV_URL = "IVRGATE_DATABASE_URL"
SQLITE_FILE = "ivrgate.db"
_DEFERRED = "ivrgate_deferred"


IN_LIST_MAX = 10_000
"""Values in one IN list at most: PostgreSQL's protocol carries 65,535 parameters a statement, SQLite's
default build 32,766, and a batch of submissions may price tens of thousands of prefixes."""
CONFLICT_STATES = frozenset({"40P01", "40001"})
"""PostgreSQL's deadlock_detected and serialization_failure: the transaction was rolled back whole and
may simply run again."""
CONFLICT_RETRIES = 3
UNREACHABLE_WORDS = ("locked", "timeout", "timed out", "could not connect", "connection", "unable to open")
"""Words of a driver's OperationalError that mean the database cannot be reached now (508), as opposed to
a statement that failed (507/504): SQLite's `database is locked` and `unable to open database file`,
PostgreSQL's refused connections and timeouts."""


def conflicted(exc: BaseException) -> bool:
    """Whether `exc`, or one it was raised from, is a PostgreSQL deadlock or serialization failure."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DBAPIError) and getattr(seen.orig, "sqlstate", None) in CONFLICT_STATES:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def retrying(transaction: Callable[[], T], attempts: int = CONFLICT_RETRIES) -> T:
    """`transaction()`, run again (up to `attempts` times in all) when PostgreSQL rolled it back as a
    deadlock victim or for a serialization failure; it must be one whole transaction, so a new run
    starts from nothing. Two writers that lock owner rows in different orders (a batch of submissions,
    the SMS sender's receipts) can meet in such a cycle; PostgreSQL breaks it by aborting one of them."""
    for attempt in range(1, attempts + 1):
        try:
            return transaction()
        except Exception as exc:
            if attempt == attempts or not conflicted(exc):
                raise
            log.warning("transaction rolled back by a conflict (attempt %d of %d): running it again",
                        attempt, attempts)
    raise AssertionError("unreachable")


def store_failure(exc: BaseException, writing: bool) -> StoreError:
    """The coded store error of a driver or pool failure: DatabaseUnavailable (508) when the database
    cannot be reached, is locked or timed out; else DatabaseWriteError (507) for a write, StoreError
    (504) for a read."""
    if isinstance(exc, sa_exc.TimeoutError):
        return DatabaseUnavailable(f"connection pool timed out: {exc}")
    if isinstance(exc, DBAPIError):
        text = str(exc.orig).lower()
        if exc.connection_invalidated or (
            isinstance(exc, sa_exc.OperationalError) and any(word in text for word in UNREACHABLE_WORDS)
        ):
            return DatabaseUnavailable(f"database unavailable: {type(exc.orig).__name__}")
    kind = type(getattr(exc, "orig", None) or exc).__name__
    return DatabaseWriteError(f"write failed: {kind}") if writing else StoreError(f"read failed: {kind}")


@contextmanager
def mapped_errors(writing: bool) -> Iterator[None]:
    """Driver and pool failures in the block leave it as `store_failure()` (logged once here); the
    store's own errors and everything else pass through."""
    try:
        yield
    except DBAPIError as exc:
        log.error("database error: %s", exc)
        raise store_failure(exc, writing) from exc
    except sa_exc.SQLAlchemyError as exc:  # not the driver: the pool, or SQLAlchemy refusing a statement
        log.exception("database error outside the driver")
        raise store_failure(exc, writing) from exc


class WriterBusy(Exception):
    """The writer lock is held and the caller asked not to wait (`Database.transaction(wait=False)`):
    nothing was written; run the work again where it may wait (a thread)."""


class WriterLock:
    """SQLite's one writer: queued in this process (a threading.Lock) and, when the database is a file,
    across processes through an flock on `<database>.writer`. Not re-entrant: a write transaction opened
    inside another on the same thread would wait for itself, so it is refused (RuntimeError) instead."""

    def __init__(self, database: str | None = None) -> None:
        self._lock = threading.Lock()
        self._path = f"{database}.writer" if database and database != ":memory:" else None
        self._fd: int | None = None
        self._pid = 0
        self._owner: int | None = None
        self._count = threading.Lock()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Threads of this process queued for the lock now (in this process or behind another one)."""
        return self._waiting

    @contextmanager
    def held(self, wait: bool = True) -> Iterator[None]:
        """The lock for the block; WriterBusy at once when it is taken and `wait` is False."""
        self._acquire(wait)
        try:
            yield
        finally:
            self._release()

    def _acquire(self, wait: bool) -> None:
        if self._owner == threading.get_ident():
            raise RuntimeError("a write transaction inside another on the same thread would wait for itself")
        if not self._lock.acquire(blocking=False):
            if not wait:
                raise WriterBusy("SQLite writer busy")
            with self._queued():
                self._lock.acquire()
        try:
            self._lock_file(wait)
        except BaseException:
            self._lock.release()
            raise
        self._owner = threading.get_ident()

    def _lock_file(self, wait: bool) -> None:
        if self._path is None:
            return
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own (flock is per open)
            self._fd, self._pid = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise WriterBusy("SQLite writer busy in another process") from None
            with self._queued():
                fcntl.flock(self._fd, fcntl.LOCK_EX)

    @contextmanager
    def _queued(self) -> Iterator[None]:
        with self._count:
            self._waiting += 1
        try:
            yield
        finally:
            with self._count:
                self._waiting -= 1

    def _release(self) -> None:
        self._owner = None
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def close(self) -> None:
        """Close the lock file (the process's shutdown; a later write opens it again)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def upsert_insert(bind: Session | Connection) -> Any:
    """The INSERT construct of the store's dialect, the one with ON CONFLICT (PostgreSQL or SQLite)."""
    dialect = bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def resolve_url(explicit: str, data_dir: Path) -> str:
    """The database URL: `explicit`, else $IVRGATE_DATABASE_URL, else SQLite at <data_dir>/ivrgate.db."""
    url = explicit or os.environ.get(ENV_URL, "")
    if url:
        return normalise_url(url)
    return f"sqlite:///{data_dir / SQLITE_FILE}"


def normalise_url(url: str) -> str:
    """Read plain `postgresql://` and `postgres://` URLs as psycopg 3 URLs."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_store_engine(url: str, busy_timeout_s: float = 30.0, **kwargs: Any) -> Engine:
    """An Engine with the store's connection rules (SQLite: WAL, foreign keys, busy timeout, IMMEDIATE)."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"timeout": busy_timeout_s, "check_same_thread": False}
    engine = create_engine(parsed, connect_args=connect_args, **kwargs)
    _install_sqlite_rules(engine)
    return engine


def _install_sqlite_rules(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        deferred = conn.get_execution_options().get(_DEFERRED, False)
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


class Database:
    """The store's engine, its writer lock and its transactions; one per process, shared by threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write = sessionmaker(engine, expire_on_commit=False)
        self._read = sessionmaker(engine.execution_options(**{_DEFERRED: True}), expire_on_commit=False)
        self.writer: WriterLock | None = (
            WriterLock(engine.url.database) if engine.dialect.name == "sqlite" else None
        )
        """SQLite's writer lock, taken by every transaction() (None on PostgreSQL)."""

    @classmethod
    def open(cls, url: str, busy_timeout_s: float = 30.0, **engine_kwargs: Any) -> Database:
        return cls(create_store_engine(url, busy_timeout_s, **engine_kwargs))

    @property
    def url(self) -> URL:
        return self.engine.url

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    @contextmanager
    def transaction(self, wait: bool = True) -> Iterator[Session]:
        """A write transaction: commits when the block ends, rolls everything back if it raises. On
        SQLite it holds the writer lock throughout (`wait=False`: WriterBusy at once when another writer
        has it). Driver failures leave as store_failure(writing=True): 507, or 508 when unreachable."""
        turn = self.writer.held(wait) if self.writer is not None else nullcontext()
        with turn, mapped_errors(writing=True), self._write() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (deferred on SQLite, so it never queues behind writers). Driver
        failures leave as store_failure(writing=False): 504, or 508 when unreachable."""
        with mapped_errors(writing=False), self._read() as session:
            try:
                yield session
            finally:
                session.rollback()

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to `revision` with alembic (idempotent)."""
        upgrade(self.engine, revision)

    def dispose(self) -> None:
        """Close the pool's connections and the writer lock's file."""
        self.engine.dispose()
        if self.writer is not None:
            self.writer.close()


def alembic_config(engine: Engine | None = None, url: str | None = None) -> Config:
    """An alembic Config that works from an installed package (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the migrations up to `revision` on `engine`'s database."""
    log.info("upgrading %s to %s", engine.url.render_as_string(hide_password=True), revision)
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
