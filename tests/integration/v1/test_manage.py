"""api.core.manage straight against the store (SQLite and PostgreSQL): keyset pages with tied timestamps,
visibility by role, top-up references, CSV reading."""

from __future__ import annotations

import datetime as dt

import pytest

from api.core import manage
from api.core.jobs import Caller
from store import accounts, queue
from store.db import Database
from store.errors import DuplicateEntry
from store.models import Role
from tests.integration.v1.conftest import HASHER

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 11, 24, 12, 0, 0, tzinfo=dt.UTC)


def caller(db: Database, username: str, role: Role, parent_id: int | None = None) -> Caller:
    with db.transaction() as session:
        parent = accounts.find_account(session, "o@example.com") if parent_id else None
        a = accounts.create_account(
            session, username=username, password="pw", now=NOW, role=role, parent=parent, hasher=HASHER
        )
        return Caller(a.id, a.owner_id, a.username, a.role)


def write_messages(db: Database, who: Caller, count: int, at: dt.datetime) -> list[str]:
    with db.transaction() as session:
        from store.models import Account

        user = session.get(Account, who.user_id)
        assert user is not None
        return [
            queue.create_message(
                session, user, queue.NewMessage(kind="sms", phone="+12506063167", job_id="j" * 32), at
            ).id
            for _ in range(count)
        ]


@pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
def test_pages_are_complete_and_disjoint_when_timestamps_tie(db: Database) -> None:
    owner = caller(db, "o@example.com", Role.OWNER)
    sub = caller(db, "s@example.com", Role.SUBUSER, owner.user_id)
    admin = caller(db, "a@example.com", Role.ADMINISTRATOR)
    other = caller(db, "x@example.com", Role.OWNER)
    written = write_messages(db, owner, 7, NOW) + write_messages(db, sub, 3, NOW + dt.timedelta(seconds=1))
    write_messages(db, other, 2, NOW)
    seen: list[str] = []
    cursor = None
    with db.read() as session:
        while True:
            page = manage.list_messages(session, owner, manage.MessageFilter(), limit=3, cursor=cursor)
            seen += [m.id for m in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert sorted(seen) == sorted(written) and len(seen) == len(set(seen))
        assert len(manage.list_messages(session, sub, manage.MessageFilter()).items) == 3
        assert len(manage.list_messages(session, admin, manage.MessageFilter(), limit=500).items) == 12
        assert len(manage.list_messages(session, other, manage.MessageFilter()).items) == 2


@pytest.mark.parametrize("cursor", ["", "@@@", "bm90IGEgY3Vyc29y", manage.encode_cursor(NOW, "")])
def test_bad_cursors_are_refused(cursor: str) -> None:
    if cursor:
        with pytest.raises(manage.InvalidCursor):
            manage.decode_cursor(cursor)
    assert manage.decode_cursor(manage.encode_cursor(NOW, "ab")) == (NOW, "ab")


def test_top_up_reference_is_once_per_account(db: Database) -> None:
    owner = caller(db, "o@example.com", Role.OWNER)
    admin = caller(db, "a@example.com", Role.ADMINISTRATOR)
    with db.transaction() as session:
        manage.top_up(session, admin, owner.user_id, 100, "inv-1", NOW)
    with pytest.raises(DuplicateEntry), db.transaction() as session:
        manage.top_up(session, admin, owner.user_id, 100, " inv-1 ", NOW)
    with pytest.raises(manage.Forbidden), db.transaction() as session:
        manage.top_up(session, owner, owner.user_id, 100, "inv-2", NOW)
    with db.read() as session:
        assert [e.amount for e in manage.list_ledger(session, owner)] == [100]


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("phone,name\n+1 250 606 3167,Adam\n", [("+1 250 606 3167", "Adam")]),
        ("name,phone\nAdam,2506063167\n", [("2506063167", "Adam")]),
        ("\ufeff2506063167,Adam\n\n2501231233\n", [("2506063167", "Adam"), ("2501231233", "")]),
        ("Phone\n2506063167\n", [("2506063167", "")]),
        ("", []),
    ],
)
def test_read_csv_pairs(text: str, rows: list[tuple[str, str]]) -> None:
    assert manage.read_csv_pairs(text, "name") == rows
