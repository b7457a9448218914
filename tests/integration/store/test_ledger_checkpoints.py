"""Balance checkpoints: the balance read from the latest checkpoint plus the entries after it always
equals the sum of the whole ledger, on both databases, whatever the operations and their interleaving."""

from __future__ import annotations

import datetime as dt
import itertools
import threading

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import ledger, queue
from store.db import Database
from store.errors import InsufficientBalance
from store.models import Account, LedgerCheckpoint, LedgerEntry, Message
from tests.integration.store.conftest import make_owner

pytestmark = pytest.mark.integration
_owners = itertools.count()

Op = tuple[str, int]
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("topup"), st.integers(1, 5_000)),
        st.tuples(st.just("reserve"), st.integers(0, 4_000)),
        st.tuples(st.just("settle"), st.integers(0, 100)),
        st.tuples(st.just("refund"), st.integers(1, 100)),
    ),
    max_size=40,
)


def _reserve(db: Database, owner_id: int, amount: int, now: dt.datetime) -> bool:
    """One submission the way api.core.service writes it: lock, messages, reservation; False when short."""
    spec = queue.NewMessage(kind="tts", phone="+12506063167", job_id="j" * 32, reserved=amount)
    try:
        with db.transaction() as session:
            limit = ledger.lock_owner_id(session, owner_id)
            rows = queue.message_rows(owner_id, owner_id, [spec], now)
            queue.insert_rows(session, [rows])  # rolled back with the rest when the reservation is short
            ledger.reserve_locked(session, owner_id, owner_id, limit, [(rows.created[0].id, amount)], now)
    except InsufficientBalance:
        return False
    return True


def _open_message(db: Database, owner_id: int, settled: bool) -> str | None:
    with db.read() as session:
        query = select(Message.id).where(Message.account_id == owner_id, Message.status_code == 100)
        query = query.where(Message.cost.is_not(None) if settled else Message.cost.is_(None))
        return session.scalar(query.order_by(Message.created_at, Message.id).limit(1))


def _apply(db: Database, owner_id: int, op: Op, now: dt.datetime) -> int:
    """Apply `op`; the change of the balance it should make."""
    kind, value = op
    if kind == "topup":
        with db.transaction() as session:
            ledger.top_up(session, owner_id, value, now)
        return value
    if kind == "reserve":
        with db.read() as session:
            before = ledger.full_sum(session, owner_id)
        ok = _reserve(db, owner_id, value, now)
        assert ok == (before >= value)
        return -value if ok else 0
    message_id = _open_message(db, owner_id, settled=kind == "refund")
    if message_id is None:
        return 0
    with db.transaction() as session:
        message = session.get(Message, message_id)
        assert message is not None
        if kind == "settle":
            cost = message.reserved * value // 100
            ledger.settle(session, message, cost, now)
            return message.reserved - cost
        amount = min(value, (message.cost or 0) - ledger.refunded(session, message.id))
        if amount <= 0:
            return 0
        ledger.refund(session, message, amount, now)
        return amount


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_balance_is_always_the_full_sum(
    db: Database, now: dt.datetime, hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch, ops: list[Op]
) -> None:
    monkeypatch.setattr(ledger, "CHECKPOINT_EVERY", 3)
    owner = make_owner(db, now, hasher, balance=1_000, username=f"prop{next(_owners)}@example.com")
    expected = 1_000
    for op in ops:
        expected += _apply(db, owner.id, op, now)
        with db.read() as session:
            read = ledger.tally(session, owner.id)
            assert read.balance == ledger.full_sum(session, owner.id) == expected
            assert read.balance >= 0
            assert read.entries == ledger_entries(session, owner.id)


def ledger_entries(session: Session, owner_id: int) -> int:
    query = select(func.count()).select_from(LedgerEntry).where(LedgerEntry.account_id == owner_id)
    return int(session.scalar(query) or 0)


def test_checkpoints_are_appended_and_bound_the_read(
    db: Database, now: dt.datetime, hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger, "CHECKPOINT_EVERY", 4)
    owner = make_owner(db, now, hasher, balance=100_000)
    for _ in range(20):
        assert _reserve(db, owner.id, 1_000, now)
    with db.read() as session:
        checkpoints = session.scalars(
            select(LedgerCheckpoint).where(LedgerCheckpoint.account_id == owner.id)
        ).all()
        read = ledger.tally(session, owner.id)
        assert len(checkpoints) == 5  # at 4, 8, 12, 16 and 20 entries
        assert [c.entries for c in checkpoints] == [4, 8, 12, 16, 20]
        assert read.entries_after == 1 and read.entries == 21
        assert read.balance == ledger.full_sum(session, owner.id) == 80_000


def test_concurrent_submissions_cannot_overdraw_across_checkpoints(
    db: Database, now: dt.datetime, hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger, "CHECKPOINT_EVERY", 2)
    owner = make_owner(db, now, hasher, balance=10_000)
    for _ in range(5):  # some history and checkpoints first
        assert _reserve(db, owner.id, 1_000, now)
    threads, start = 12, threading.Barrier(12)
    results: list[bool] = []
    lock = threading.Lock()

    def attempt() -> None:
        start.wait()
        ok = _reserve(db, owner.id, 1_000, now)
        with lock:
            results.append(ok)

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(results) == [False] * 7 + [True] * 5
    with db.read() as session:
        assert ledger.balance(session, owner.id) == ledger.full_sum(session, owner.id) == 0


def test_concurrent_settles_and_reservations_keep_checkpoints_exact(
    db: Database, now: dt.datetime, hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outcomes settle while submissions reserve: every ledger write takes the owner lock, so no
    checkpoint can be written past an entry that commits later."""
    monkeypatch.setattr(ledger, "CHECKPOINT_EVERY", 2)
    owner = make_owner(db, now, hasher, balance=1_000_000)
    for _ in range(16):
        assert _reserve(db, owner.id, 1_000, now)
    with db.read() as session:
        pending = list(session.scalars(select(Message.id).where(Message.account_id == owner.id)))

    def settle_all(ids: list[str]) -> None:
        for message_id in ids:
            with db.transaction() as session:
                message = session.get(Message, message_id)
                assert message is not None
                ledger.settle(session, message, 400, now)

    def reserve_many() -> None:
        for _ in range(16):
            assert _reserve(db, owner.id, 1_000, now)

    workers = [
        threading.Thread(target=settle_all, args=(pending[0::2],)),
        threading.Thread(target=settle_all, args=(pending[1::2],)),
        threading.Thread(target=reserve_many),
        threading.Thread(target=reserve_many),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with db.read() as session:
        total = ledger.full_sum(session, owner.id)
        assert ledger.balance(session, owner.id) == total == 1_000_000 - 16 * 400 - 32 * 1_000
        count = session.scalar(select(func.count()).select_from(LedgerCheckpoint))
        assert count is not None and count > 0
        assert session.get(Account, owner.id) is not None
