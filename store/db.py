"""Connecting to the store: SQLite (WAL) in the data directory by default, PostgreSQL by URL; migrations.

    db = Database.open(resolve_url("", data_dir))
    db.upgrade()                       # alembic upgrade head
    with db.transaction() as session:  # one transaction; commits on success, rolls back on error
        ...

On SQLite every write transaction starts with BEGIN IMMEDIATE: it takes the WAL writer lock first, so a
read-then-write (a balance check, a claim) cannot interleave with another writer. Read-only work uses
`db.read()`, a deferred transaction that never waits for writers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from store.errors import StoreError

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
    """The store's engine and its transactions; one per process, shared by threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write = sessionmaker(engine, expire_on_commit=False)
        self._read = sessionmaker(engine.execution_options(**{_DEFERRED: True}), expire_on_commit=False)

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
    def transaction(self) -> Iterator[Session]:
        """A write transaction: commits when the block ends, rolls everything back if it raises.
        Driver errors surface as StoreError (504 DATABASE ERROR); the store's own errors pass through."""
        with self._write() as session:
            try:
                yield session
                session.commit()
            except DBAPIError as exc:
                session.rollback()
                log.error("database error: %s", exc)
                raise StoreError(f"database error: {type(exc.orig).__name__}") from exc
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (deferred on SQLite, so it never queues behind writers)."""
        with self._read() as session:
            try:
                yield session
            finally:
                session.rollback()

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to `revision` with alembic (idempotent)."""
        upgrade(self.engine, revision)

    def dispose(self) -> None:
        self.engine.dispose()


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
