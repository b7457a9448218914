"""store.outbox's claims as leases (store.lease): a claim is (row id, attempts); renewing it and recording
its result only work while no other sender has claimed the row since (the attempts count fences them)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from store import outbox
from store.db import Database
from store.models import OutboxItem

URL = "http://127.0.0.1:9/hook"


def claimed(db: Database, now: dt.datetime, lease_s: float = 60.0) -> outbox.Claim:
    with db.transaction() as session:
        outbox.enqueue(session, kind=outbox.CALLBACK, url=URL, body="{}", now=now)
    with db.transaction() as session:
        (item,) = outbox.claim_due(session, now, lease_s, 1)
        return outbox.claim_of(item)


def row(db: Database, item_id: int) -> OutboxItem:
    with db.read() as session:
        item = session.get_one(OutboxItem, item_id)
        session.expunge(item)
        return item


def take_over(db: Database, item_id: int, now: dt.datetime) -> outbox.Claim:
    """What another sender's claim does to the row after the first lease ran out."""
    with db.transaction() as session:
        (item,) = outbox.claim_due(session, now, 60.0, 1)
        assert item.id == item_id
        return outbox.claim_of(item)


def test_renew_extends_a_held_claim(db: Database, now: dt.datetime) -> None:
    claim = claimed(db, now, lease_s=10.0)
    later = now + dt.timedelta(seconds=5)
    with db.transaction() as session:
        assert outbox.renew(session, [claim], later, 10.0) == {claim}
        assert outbox.renew(session, [], later, 10.0) == set()
    assert row(db, claim[0]).next_attempt_at == later + dt.timedelta(seconds=10)


def test_a_claim_taken_over_is_neither_renewed_nor_recorded(db: Database, now: dt.datetime) -> None:
    first = claimed(db, now, lease_s=10.0)
    expired = now + dt.timedelta(seconds=11)
    second = take_over(db, first[0], expired)
    assert second == (first[0], first[1] + 1)
    with db.transaction() as session:
        assert outbox.renew(session, [first], expired, 10.0) == set()
        assert not outbox.delivered(session, first[0], expired, attempt=first[1])
        assert not outbox.failed(session, first[0], expired, "late", attempt=first[1])
    item = row(db, first[0])
    assert (item.delivered_at, item.last_error, item.attempts) == (None, "", 2)
    assert item.next_attempt_at == expired + dt.timedelta(seconds=60)  # the second claim's lease
    with db.transaction() as session:
        assert outbox.failed(session, second[0], expired, "HTTP 500", attempt=second[1])
    assert row(db, first[0]).last_error == "HTTP 500"


def test_a_held_claim_records_its_result(db: Database, now: dt.datetime) -> None:
    claim = claimed(db, now)
    with db.transaction() as session:
        assert outbox.delivered(session, claim[0], now, attempt=claim[1])
        assert outbox.renew(session, [claim], now, 60.0) == set()  # delivered: nothing left to hold
    assert row(db, claim[0]).delivered_at is not None


def test_a_delivered_row_is_not_failed_by_a_late_claim(db: Database, now: dt.datetime) -> None:
    claim = claimed(db, now)
    with db.transaction() as session:
        session.execute(update(OutboxItem).where(OutboxItem.id == claim[0]).values(delivered_at=now))
        assert not outbox.failed(session, claim[0], now, "late", attempt=claim[1])
    assert row(db, claim[0]).last_error == ""
