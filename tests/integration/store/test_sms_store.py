"""The SMS tables of store.mo_parts and store.concat_refs on SQLite and PostgreSQL, with concurrent
writers where the database lets two of them overlap."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from store import concat_refs, mo_parts
from store.db import Database

pytestmark = pytest.mark.integration

KEY = mo_parts.GroupKey("+12505553000", "+12505550100", 42, 2)


def part(seq: int) -> mo_parts.StoredPart:
    return mo_parts.StoredPart(seq, f"part {seq}".encode(), 0, 0)


def test_parts_wait_for_the_last_then_leave_the_store(db: Database, now: dt.datetime) -> None:
    with db.transaction() as session:
        assert mo_parts.add_part(session, KEY, part(2), now) is None
    with db.transaction() as session:
        assert mo_parts.add_part(session, KEY, part(2), now + dt.timedelta(seconds=1)) is None  # again
    with db.read() as session:
        assert mo_parts.pending(session) == 1
        assert mo_parts.overdue(session, now) == []
        assert len(mo_parts.overdue(session, now + dt.timedelta(seconds=1))) == 1
    with db.transaction() as session:
        taken = mo_parts.add_part(session, KEY, part(1), now + dt.timedelta(seconds=2))
    assert taken is not None
    assert taken.key == KEY and taken.first_at == now
    assert [p.short_message for p in taken.parts] == [b"part 1", b"part 2"]
    with db.read() as session:
        assert mo_parts.pending(session) == 0


def test_an_overdue_group_is_taken_once(db: Database, now: dt.datetime) -> None:
    with db.transaction() as session:
        mo_parts.add_part(session, KEY, part(1), now)
    with db.read() as session:
        (group_id,) = mo_parts.overdue(session, now + dt.timedelta(seconds=1))
    with db.transaction() as session:
        taken = mo_parts.take(session, group_id)
    with db.transaction() as session:
        assert mo_parts.take(session, group_id) is None
    assert taken is not None and [p.seq for p in taken.parts] == [1]


def test_references_count_per_destination(db: Database) -> None:
    with db.transaction() as session:
        assert concat_refs.allocate(session, {"+1": 3, "+2": 1}) == {"+1": 0, "+2": 0}
    with db.transaction() as session:
        assert concat_refs.allocate(session, {"+1": 1, "+3": 0}) == {"+1": 3}
    assert [concat_refs.reference(n, 8) for n in (0, 255, 256, 300)] == [0, 255, 0, 44]
    assert concat_refs.reference(65_537, 16) == 1


def _blocked_backends(db: Database) -> int:
    with db.engine.connect() as conn:
        query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                     "AND wait_event_type = 'Lock'")
        return int(conn.execute(query).scalar_one())


def _overlapping(db: Database, first: Callable[[Session], object], second: Callable[[], object]) -> object:
    """Run `first` in an open transaction, start `second` in another thread, wait until PostgreSQL shows
    it waiting for a lock, then commit the first; the second's result."""
    with ThreadPoolExecutor(1) as pool:
        holding = threading.Event()
        release = threading.Event()

        def run_first() -> None:
            with db.transaction() as session:
                first(session)
                holding.set()
                release.wait(30)

        one = pool.submit(run_first)
        assert holding.wait(30)
        with ThreadPoolExecutor(1) as other:
            later = other.submit(second)
            deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
            while _blocked_backends(db) == 0:
                assert dt.datetime.now(dt.UTC) < deadline, "the second writer never waited for the first"
                time.sleep(0.01)
            release.set()
            one.result(30)
            return later.result(30)


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_two_nodes_receiving_the_two_parts_at_once_join_them(db: Database, now: dt.datetime) -> None:
    def second() -> mo_parts.Taken | None:
        with db.transaction() as session:
            return mo_parts.add_part(session, KEY, part(2), now)

    taken = _overlapping(db, lambda session: mo_parts.add_part(session, KEY, part(1), now), second)
    assert isinstance(taken, mo_parts.Taken) and [p.seq for p in taken.parts] == [1, 2]


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_two_senders_never_get_the_same_references(db: Database) -> None:
    got: list[dict[str, int]] = []

    def second() -> dict[str, int]:
        with db.transaction() as session:
            return concat_refs.allocate(session, {"+1": 5})

    later = _overlapping(db, lambda session: got.append(concat_refs.allocate(session, {"+1": 5})), second)
    assert got == [{"+1": 0}] and later == {"+1": 5}
