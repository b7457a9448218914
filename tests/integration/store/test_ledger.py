"""The ledger: balances are sums, reservations are atomic and all-or-nothing, outcomes settle once."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from argon2 import PasswordHasher

from store import accounts, ledger, queue
from store.db import Database
from store.errors import InsufficientBalance, StoreError
from store.models import Account, EntryKind, LedgerEntry, Role
from tests.integration.store.conftest import make_owner

pytestmark = pytest.mark.integration


def _message(db: Database, user_id: int, now: dt.datetime, reserved: int) -> str:
    with db.transaction() as session:
        user = session.get(Account, user_id)
        assert user is not None
        message = queue.create_message(
            session,
            user,
            queue.NewMessage(
                kind="tts", phone="+12506063167", job_id="j" * 32, rate=reserved // 5, reserved=reserved
            ),
            now,
        )
        ledger.reserve_for(session, user, [message], now)
        return message.id


def test_top_up_reserve_settle_arithmetic(db: Database, now: dt.datetime, hasher: PasswordHasher) -> None:
    owner = make_owner(db, now, hasher, balance=10_000_000)
    message_id = _message(db, owner.id, now, reserved=2_500_000)
    with db.read() as session:
        assert ledger.balance(session, owner.id) == 7_500_000
        assert ledger.spent(session, owner.id) == 2_500_000
    with db.transaction() as session:
        message = queue.get_message(session, message_id)
        assert ledger.settle(session, message, 600_000, now) == 600_000
    with db.read() as session:
        assert ledger.balance(session, owner.id) == 9_400_000
        kinds = [e.kind for e in ledger.entries(session, owner.id)]
        assert kinds == ["release", "charge", "reserve", "topup"]
        assert sum(e.amount for e in ledger.entries(session, owner.id)) == 9_400_000
    with db.transaction() as session, pytest.raises(StoreError):
        ledger.settle(session, queue.get_message(session, message_id), 1, now)


def test_charge_is_capped_at_reservation_and_refund_limited(
    db: Database, now: dt.datetime, hasher: PasswordHasher
) -> None:
    owner = make_owner(db, now, hasher, balance=1_000_000)
    message_id = _message(db, owner.id, now, reserved=500_000)
    with db.transaction() as session:
        message = queue.get_message(session, message_id)
        assert ledger.settle(session, message, 900_000, now) == 500_000
        ledger.refund(session, message, 200_000, now, note="goodwill")
    with db.transaction() as session, pytest.raises(StoreError):
        ledger.refund(session, queue.get_message(session, message_id), 300_001, now)
    with db.read() as session:
        assert ledger.balance(session, owner.id) == 700_000


def test_insufficient_balance_writes_nothing(db: Database, now: dt.datetime, hasher: PasswordHasher) -> None:
    owner = make_owner(db, now, hasher, balance=1_000)
    with pytest.raises(InsufficientBalance) as caught, db.transaction() as session:
        ledger.reserve(session, owner, [(None, 600), (None, 600)], now)
    assert caught.value.code == 503
    with db.read() as session:
        assert ledger.balance(session, owner.id) == 1_000
        assert session.query(LedgerEntry).filter_by(kind=EntryKind.RESERVE.value).count() == 0


def test_subuser_spending_limit(db: Database, now: dt.datetime, hasher: PasswordHasher) -> None:
    owner = make_owner(db, now, hasher, balance=10_000)
    with db.transaction() as session:
        parent = session.get(Account, owner.id)
        sub = accounts.create_account(
            session,
            username="sub@example.com",
            password="pw",
            now=now,
            role=Role.SUBUSER,
            parent=parent,
            spending_limit=3_000,
            hasher=hasher,
        )
    with db.transaction() as session:
        ledger.reserve(session, sub, [(None, 2_000)], now)
    with pytest.raises(InsufficientBalance), db.transaction() as session:
        ledger.reserve(session, sub, [(None, 1_001)], now)
    with db.transaction() as session:
        ledger.reserve(session, owner, [(None, 5_000)], now)  # the owner has no limit
    with db.read() as session:
        assert ledger.spent(session, sub.id) == 2_000
        assert ledger.balance(session, owner.id) == 3_000


def test_concurrent_reservations_cannot_overdraw(
    db: Database, now: dt.datetime, hasher: PasswordHasher
) -> None:
    owner = make_owner(db, now, hasher, balance=5 * 1_000)
    threads, start = 12, threading.Barrier(12)
    results: list[bool] = []
    lock = threading.Lock()

    def attempt() -> None:
        start.wait()
        try:
            with db.transaction() as session:
                ledger.reserve(session, owner, [(None, 1_000)], now)
            ok = True
        except InsufficientBalance:
            ok = False
        with lock:
            results.append(ok)

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(results) == [False] * 7 + [True] * 5
    with db.read() as session:
        assert ledger.balance(session, owner.id) == 0


def test_top_up_must_be_positive(db: Database, now: dt.datetime, hasher: PasswordHasher) -> None:
    owner = make_owner(db, now, hasher)
    with pytest.raises(ValueError), db.transaction() as session:
        ledger.top_up(session, owner.id, 0, now)
