"""Per-account call limits through the store (issue 14, item 3): the voice worker's claim
(api.runtime.worker.claim_due) on SQLite and PostgreSQL. Claimers racing in threads, each its own transaction,
stand for worker nodes: the account row lock makes them count one account's calls in flight in turn."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from argon2 import PasswordHasher

from api.core.errors import InvalidParameter
from api.core.manage import set_call_limits
from api.runtime.worker import claim_due
from ivr.settings import DialerSettings
from store import accounts, queue
from store.db import Database
from store.models import Account, Role
from tests.integration.store.conftest import make_owner
from tests.integration.store.test_queue import LEASE, _later, _submit

pytestmark = pytest.mark.integration
DIALER = DialerSettings(max_concurrent=16, calls_per_second=1000.0)


def limit(db: Database, owner: Account, *, calls: int | None = None, per_second: float | None = None) -> None:
    with db.transaction() as session:
        set_call_limits(session.get_one(Account, owner.id), max_concurrent_calls=calls,
                        calls_per_second=per_second)


def test_racing_claimers_hold_an_account_to_its_calls_at_once(db: Database, now: dt.datetime,
                                                              hasher: PasswordHasher) -> None:
    owner = make_owner(db, now, hasher, balance=100_000_000)
    other = make_owner(db, now, hasher, balance=100_000_000, username="other@example.com")
    limit(db, owner, calls=2)
    ids = _submit(db, owner, now, count=12)
    others = _submit(db, other, now, count=3)  # no limit of its own: the node's 16
    got: dict[str, list[str]] = {}
    start = threading.Barrier(4)

    def node(name: str) -> None:
        start.wait()
        mine: list[str] = []
        for _ in range(5):  # nothing finishes: after the first claims, every round finds the account full
            with db.transaction() as session:
                claimed, _wait = claim_due(session, name, now, LEASE, 3, DIALER)
                mine += [m.id for m in claimed]
        got[name] = mine

    threads = [threading.Thread(target=node, args=(f"node{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [i for mine in got.values() for i in mine]
    assert len(set(claimed)) == len(claimed)
    assert len(set(claimed) & set(ids)) == 2 and set(others) <= set(claimed)
    with db.read() as session:
        assert queue.in_flight(session, owner.id, now) == 2
        assert queue.in_flight(session, owner.id, _later(now, LEASE + 1)) == 0  # leases expired: not held


def test_a_finished_call_frees_its_place_and_the_rate_says_when(db: Database, now: dt.datetime,
                                                                hasher: PasswordHasher) -> None:
    owner = make_owner(db, now, hasher, balance=100_000_000)
    limit(db, owner, calls=1, per_second=2.0)  # a bucket of 2, one every half second
    ids = _submit(db, owner, now, count=3)
    with db.transaction() as session:
        (first,), wait = claim_due(session, "w", now, LEASE, 4, DIALER)
    assert wait is None  # the account is full: no rate to wait for
    with db.transaction() as session:
        assert claim_due(session, "w", _later(now, 0.1), LEASE, 4, DIALER) == ([], None)
        outcome = queue.CallRecord(600, "Busy", answered=False)
        queue.complete_call(session, first.id, "w", outcome, _later(now, 0.1))
    with db.transaction() as session:
        (second,), _wait = claim_due(session, "w", _later(now, 0.1), LEASE, 4, DIALER)
        queue.complete_call(session, second.id, "w", outcome, _later(now, 0.1))
    with db.transaction() as session:  # the bucket's two tokens are spent: the third waits for one
        claimed, wait = claim_due(session, "w", _later(now, 0.2), LEASE, 4, DIALER)
    assert claimed == [] and wait == pytest.approx(0.3)
    with db.transaction() as session:
        (third,), wait = claim_due(session, "w", _later(now, 0.5), LEASE, 4, DIALER)
    assert [first.id, second.id, third.id] == ids and wait is None


def test_accounts_are_served_oldest_due_first(db: Database, now: dt.datetime, hasher: PasswordHasher) -> None:
    first = make_owner(db, now, hasher, balance=100_000_000)
    second = make_owner(db, now, hasher, balance=100_000_000, username="second@example.com")
    (late,) = _submit(db, first, _later(now, 5))  # the lower account ID, due later
    (early,) = _submit(db, second, now)
    with db.transaction() as session:
        assert [a.id for a, _ in queue.lock_due_accounts(session, _later(now, 10))] == [second.id, first.id]
        claimed, _wait = claim_due(session, "w", _later(now, 10), LEASE, 1, DIALER)
    assert [m.id for m in claimed] == [early]
    with db.transaction() as session:
        claimed, _wait = claim_due(session, "w", _later(now, 10), LEASE, 1, DIALER)
    assert [m.id for m in claimed] == [late]


@pytest.mark.parametrize(("calls", "per_second", "field"), [
    (0, None, "MAX_CONCURRENT_CALLS"), (10_001, None, "MAX_CONCURRENT_CALLS"),
    (None, 0.0, "CALLS_PER_SECOND"), (None, -1.0, "CALLS_PER_SECOND"), (None, 10_000.5, "CALLS_PER_SECOND"),
])
def test_limits_out_of_range_are_refused(db: Database, now: dt.datetime, hasher: PasswordHasher,
                                         calls: int | None, per_second: float | None, field: str) -> None:
    owner = make_owner(db, now, hasher)
    with pytest.raises(InvalidParameter) as refused:
        limit(db, owner, calls=calls, per_second=per_second)
    assert (refused.value.code, refused.value.status_text) == (500, f"ERROR: INVALID {field}")
    with db.read() as session:
        kept = session.get_one(Account, owner.id)
        assert (kept.max_concurrent_calls, kept.calls_per_second) == (None, None)


def test_a_subusers_calls_count_as_its_owners(db: Database, now: dt.datetime, hasher: PasswordHasher) -> None:
    owner = make_owner(db, now, hasher)
    with db.transaction() as session:
        clerk = accounts.create_account(session, username="clerk@example.com", password="pw", now=now,
                                        role=Role.SUBUSER, parent=session.get_one(Account, owner.id),
                                        hasher=hasher)
        with pytest.raises(InvalidParameter, match="owner"):
            set_call_limits(clerk, max_concurrent_calls=2, calls_per_second=None)
