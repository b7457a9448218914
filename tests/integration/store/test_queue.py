"""Messages as a queue: claims with leases, heartbeats, expiry and reclaim (also after a real SIGKILL),
and complete_call() writing outcome, charge and callback atomically."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from unittest import mock

import pytest
from argon2 import PasswordHasher

from coded.statuses import CALLING
from store import ledger, outbox, queue
from store.db import Database
from store.errors import LeaseLost, MessageNotFound
from store.models import Account, LedgerEntry, Message, OutboxItem
from tests.integration.store.conftest import make_owner

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
RATE = 120_000  # per minute
LEASE = 30.0


def _submit(db: Database, owner: Account, now: dt.datetime, count: int = 1, callback: str = "") -> list[str]:
    with db.transaction() as session:
        messages = [
            queue.create_message(
                session,
                owner,
                queue.NewMessage(
                    kind="tts",
                    phone=f"+1250606{3160 + n}",
                    job_id="a" * 32,
                    body="Hello",
                    rate=RATE,
                    reserved=5 * RATE,
                    callback_url=callback,
                    settings={"repeat": 1, "response": True},
                ),
                now,
            )
            for n in range(count)
        ]
        ledger.reserve_for(session, owner, messages, now)
        return [m.id for m in messages]


def _later(now: dt.datetime, seconds: float) -> dt.datetime:
    return now + dt.timedelta(seconds=seconds)


@pytest.fixture
def owner(db: Database, now: dt.datetime, hasher: PasswordHasher) -> Account:
    return make_owner(db, now, hasher, balance=100_000_000)


def test_claim_heartbeat_expiry_reclaim(db: Database, owner: Account, now: dt.datetime) -> None:
    (message_id,) = _submit(db, owner, now)
    with db.transaction() as session:
        claimed = queue.claim(session, "w1", now, LEASE, limit=5)
    assert [m.id for m in claimed] == [message_id] and claimed[0].attempts == 1
    with db.transaction() as session:
        assert queue.claim(session, "w2", _later(now, 10), LEASE) == []
        assert queue.heartbeat(session, "w1", [message_id], _later(now, 20), LEASE) == {message_id}
    with db.transaction() as session:  # the heartbeat moved the expiry to now + 50 s
        assert queue.claim(session, "w2", _later(now, 40), LEASE) == []
    with db.transaction() as session:  # w1 stopped heartbeating: its lease expires, w2 takes over
        reclaimed = queue.claim(session, "w2", _later(now, 51), LEASE)
    assert [(m.id, m.lease_owner, m.attempts) for m in reclaimed] == [(message_id, "w2", 2)]
    with db.transaction() as session:
        assert queue.heartbeat(session, "w1", [message_id], _later(now, 52), LEASE) == set()
    outcome = queue.CallRecord(200, "Voice call answered, duration 5 seconds.", answered=True, duration_s=5)
    with pytest.raises(LeaseLost), db.transaction() as session:
        queue.complete_call(session, message_id, "w1", outcome, _later(now, 53))


def test_not_due_and_wrong_kind_are_not_claimed(db: Database, owner: Account, now: dt.datetime) -> None:
    (message_id,) = _submit(db, owner, now)
    with db.transaction() as session:
        assert queue.claim(session, "w", _later(now, -1), LEASE) == []
        assert queue.claim(session, "w", now, LEASE, kinds=["sms"]) == []
        assert queue.queue_depth(session, now) == 1
        claimed = queue.claim(session, "w", now, LEASE)
    assert [m.id for m in claimed] == [message_id]


def test_complete_call_charges_by_increment_and_queues_callback(
    db: Database, owner: Account, now: dt.datetime
) -> None:
    (message_id,) = _submit(db, owner, now, callback="https://client.example/cb?a=1&b='x'")
    with db.transaction() as session:
        queue.claim(session, "w1", now, LEASE)
        queue.progress(
            session, message_id, "w1", now, CALLING, event="dialling", sip_call_id="abc@127.0.0.1"
        )
    outcome = queue.CallRecord(
        200,
        "Voice call answered, duration 61 seconds. R = 1",
        answered=True,
        duration_s=61.4,
        response="1",
        sip_code=200,
    )
    with db.transaction() as session:
        queue.complete_call(session, message_id, "w1", outcome, _later(now, 90), increment_s=6)
    with db.read() as session:
        message = queue.get_message(session, message_id)
        assert (message.status_code, message.response, message.duration_s) == (200, "1", 61)
        assert message.cost == 66 * RATE // 60 and message.finished_at is not None
        assert message.lease_owner is None and message.sip_call_id == "abc@127.0.0.1"
        assert [e.kind for e in message.events] == ["queued", "claimed", "dialling", "hung_up"]
        assert ledger.balance(session, owner.id) == 100_000_000 - message.cost
        (item,) = outbox.for_message(session, message_id)
        body = json.loads(item.body)
        assert body["STATUSTXT"] == outcome.status_text and body["RESPONSE"] == "1"
        assert item.url == "https://client.example/cb?a=1&b='x'" and item.secret_ref == f"account:{owner.id}"


@pytest.mark.parametrize(
    "target", ["store.outbox.enqueue_rows", "store.ledger.settle_many", "store.queue.add_events"]
)
def test_complete_call_is_all_or_nothing(db: Database, owner: Account, now: dt.datetime, target: str) -> None:
    (message_id,) = _submit(db, owner, now, callback="https://client.example/cb")
    with db.transaction() as session:
        queue.claim(session, "w1", now, LEASE)
    outcome = queue.CallRecord(
        200, "Voice call answered, duration 20 seconds.", answered=True, duration_s=20
    )
    real = {
        "store.ledger.settle_many": ledger.settle_many,
        "store.outbox.enqueue_rows": outbox.enqueue_rows,
        "store.queue.add_events": queue.add_events,
    }[target]

    def write_then_fail(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)  # type: ignore[operator]
        raise RuntimeError("injected failure")

    with (
        mock.patch(target, side_effect=write_then_fail),
        pytest.raises(RuntimeError),
        db.transaction() as session,
    ):
        queue.complete_call(session, message_id, "w1", outcome, _later(now, 30))
    with db.read() as session:
        message = queue.get_message(session, message_id)
        assert (message.status_code, message.finished_at, message.cost) == (100, None, None)
        assert message.lease_owner == "w1"
        assert session.query(LedgerEntry).filter_by(message_id=message_id).count() == 1  # the reservation
        assert session.query(OutboxItem).count() == 0
        assert [e.kind for e in message.events] == ["queued", "claimed"]
    with db.transaction() as session:  # and the same outcome can then be written for real
        queue.complete_call(session, message_id, "w1", outcome, _later(now, 31))


def test_unanswered_call_releases_everything_and_retry(
    db: Database, owner: Account, now: dt.datetime
) -> None:
    (message_id,) = _submit(db, owner, now)
    with db.transaction() as session:
        queue.claim(session, "w1", now, LEASE)
        queue.retry_later(session, message_id, "w1", now, _later(now, 300), reason="busy", sip_code=486)
    with db.transaction() as session:
        assert queue.claim(session, "w2", _later(now, 299), LEASE) == []
        (again,) = queue.claim(session, "w2", _later(now, 300), LEASE)
        assert again.attempts == 2 and again.status_text == "Queued"
        queue.complete_call(
            session, message_id, "w2", queue.CallRecord(601, "No answer", answered=False), _later(now, 350)
        )
    with db.read() as session:
        assert queue.get_message(session, message_id).cost == 0
        assert ledger.balance(session, owner.id) == 100_000_000


def test_concurrent_claims_never_share_a_message(db: Database, owner: Account, now: dt.datetime) -> None:
    ids = _submit(db, owner, now, count=30)
    got: dict[str, list[str]] = {}
    start = threading.Barrier(4)

    def work(name: str) -> None:
        start.wait()
        mine: list[str] = []
        while True:
            with db.transaction() as session:
                batch = queue.claim(session, name, now, LEASE, limit=3)
            if not batch:
                break
            mine += [m.id for m in batch]
        got[name] = mine

    workers = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    claimed = [i for mine in got.values() for i in mine]
    assert sorted(claimed) == sorted(ids)


def test_cancel_only_queued_and_own(
    db: Database, owner: Account, now: dt.datetime, hasher: PasswordHasher
) -> None:
    first, second = _submit(db, owner, now, count=2)
    stranger = make_owner(db, now, hasher, username="other@example.com")
    with pytest.raises(MessageNotFound), db.transaction() as session:
        queue.cancel(session, first, stranger, now)
    with db.transaction() as session:
        queue.claim(session, "w1", now, LEASE, limit=1)
    with db.transaction() as session:
        cancelled = [queue.cancel(session, i, owner, now) for i in (first, second) if i != _leased(session)]
    assert [(m.status_code, m.status_text, m.cost) for m in cancelled] == [(604, "Cancelled", 0)]
    with pytest.raises(LeaseLost), db.transaction() as session:
        queue.cancel(session, _leased(session), owner, now)


def _leased(session: object) -> str:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    return session.query(Message.id).filter(Message.lease_owner.is_not(None)).scalar() or ""


def test_sms_parts_and_receipt(db: Database, owner: Account, now: dt.datetime) -> None:
    with db.transaction() as session:
        message = queue.create_message(
            session,
            owner,
            queue.NewMessage(
                kind="sms",
                phone="+12506063167",
                job_id="b" * 32,
                body="ü" * 100,
                parts=2,
                rate=7_500,
                reserved=15_000,
            ),
            now,
        )
        ledger.reserve_for(session, owner, [message], now)
        (claimed,) = queue.claim(session, "smpp", now, LEASE, kinds=["sms"])
        queue.await_receipt(session, claimed.id, "smpp", now, ["smsc-1", "smsc-2"])
    with db.transaction() as session:
        assert queue.claim(session, "smpp", _later(now, 999), LEASE, kinds=["sms"]) == []
        part = queue.find_by_smsc_id(session, "smsc-2")
        assert part is not None and part.part == 2
        found = queue.get_message(session, part.message_id)
        assert found.smsc_ids == ["smsc-1", "smsc-2"] and found.status_text == "Sent to SMSC"
        queue.finish_message(
            session, found, _later(now, 5), (200, "Delivered"), cost=found.reserved, event="delivered"
        )
    with db.read() as session:
        assert ledger.balance(session, owner.id) == 100_000_000 - 15_000


def test_do_not_call_message_is_created_finished(db: Database, owner: Account, now: dt.datetime) -> None:
    with db.transaction() as session:
        message = queue.create_message(
            session,
            owner,
            queue.NewMessage(
                kind="tts", phone="+12506063167", job_id="c" * 32, status=(502, "PIN IN DO NOT CALL DATABASE")
            ),
            now,
        )
        assert queue.claim(session, "w", now, LEASE) == []
    assert (message.status_code, message.cost, message.finished_at) == (502, 0, now)


CHILD = """
import datetime as dt, sys, time
from coded.statuses import CALLING
from store import queue
from store.db import Database
db = Database.open(sys.argv[1])
now = dt.datetime.fromisoformat(sys.argv[2])
with db.transaction() as session:
    (m,) = queue.claim(session, "doomed", now, float(sys.argv[3]))
session_cm = db.transaction()
session = session_cm.__enter__()
queue.progress(session, m.id, "doomed", now, CALLING, event="dialling")  # mid-call, uncommitted
print(m.id, flush=True)
time.sleep(120)
"""


def test_sigkilled_worker_claim_is_reclaimed(db: Database, owner: Account, now: dt.datetime) -> None:
    (message_id,) = _submit(db, owner, now)
    url = db.url.render_as_string(hide_password=False)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, now.isoformat(), str(LEASE)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().decode().strip() == message_id
        if db.dialect == "postgresql":  # (SQLite: the child's open write transaction holds the writer lock)
            with db.transaction() as session:  # the lease is still valid: nobody else may take it
                assert queue.claim(session, "w2", _later(now, 1), LEASE) == []
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    deadline, reclaimed = time.monotonic() + 10, list[Message]()
    while not reclaimed and time.monotonic() < deadline:  # the server notices the dead connection
        with db.transaction() as session:
            reclaimed = queue.claim(session, "w2", _later(now, LEASE + 1), LEASE)
        time.sleep(0.05)
    assert [(m.id, m.attempts, m.lease_owner, m.status_code) for m in reclaimed] == [
        (message_id, 2, "w2", 100)
    ]


def test_await_receipts_stores_only_what_the_worker_still_holds(
    db: Database, owner: Account, now: dt.datetime
) -> None:
    """The sender's batch of SMSC IDs: a message whose lease expired and was taken by another worker is
    left as that worker has it (the caller answers LeaseLost for it); the held one is stored."""
    held_id, lost_id = _submit(db, owner, now, count=2)
    with db.transaction() as session:
        queue.claim(session, "w1", now, LEASE, limit=2, kinds=["tts"])
    with db.transaction() as session:  # w1 stalled past its lease: w2 takes one message over
        (taken,) = queue.claim(session, "w2", _later(now, LEASE + 1), LEASE, limit=1, kinds=["tts"])
    lost_id, held_id = (taken.id, held_id if taken.id == lost_id else lost_id)
    accepted = [queue.Accepted(held_id, ["a1", "a2"], 2), queue.Accepted(lost_id, ["b1"])]
    with db.transaction() as session:
        assert queue.await_receipts(session, "w1", _later(now, LEASE + 2), accepted) == {held_id}
    with db.read() as session:
        held, lost = queue.get_message(session, held_id), queue.get_message(session, lost_id)
        assert (held.status_text, held.smsc_ids, held.parts) == ("Sent to SMSC", ["a1", "a2"], 2)
        assert held.lease_owner is None
        assert [e.kind for e in held.events][-1] == "sent"
        assert (lost.status_code, lost.smsc_ids, lost.lease_owner) == (100, [], "w2")
