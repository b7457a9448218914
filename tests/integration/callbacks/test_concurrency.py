"""Callbacks to two real receivers on 127.0.0.1, one of which hangs: the other's callbacks arrive while
the hanging one still holds its requests (they are not sent one after another), and the hanging
destination never has more than `max_per_destination` requests of ours."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest

from api.core.signing import CallbackSecrets, CallbackSettings
from api.runtime.callbacks import CallbackSender
from store import outbox
from store.db import Database
from store.models import OutboxItem
from tests.integration.callbacks.conftest import Receiver

pytestmark = pytest.mark.integration

SECRETS = CallbackSecrets(b"k" * 32)
NOW = dt.datetime(2026, 12, 7, 12, 0, 0, tzinfo=dt.UTC)
ARRIVAL_BOUND_S = 60.0
"""Generous: the good callback comes at once, and the hanging receiver holds its requests longer."""


def enqueue(db: Database, url: str, count: int, at: dt.datetime) -> list[int]:
    with db.transaction() as session:
        return [outbox.enqueue(session, kind=outbox.CALLBACK, url=url, body=f'{{"n": {i}}}', now=at).id
                for i in range(count)]


@pytest.fixture
def hanging(receiver: Receiver) -> Iterator[Receiver]:
    """`receiver`, holding every request until the test ends."""
    receiver.hold = threading.Event()
    try:
        yield receiver
    finally:
        receiver.hold.set()


@pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
def test_a_hanging_destination_delays_only_its_own_callbacks(
    db: Database, hanging: Receiver, other_receiver: Receiver
) -> None:
    # Tenant A's five callbacks came due first; tenant B's one after them.
    enqueue(db, hanging.url, 5, NOW - dt.timedelta(minutes=1))
    enqueue(db, other_receiver.url, 1, NOW)
    settings = CallbackSettings(allow_private=True, total_timeout_s=110.0, poll_interval_s=0.05,
                                max_per_destination=2)
    stop = threading.Event()
    with CallbackSender(db, SECRETS, settings) as sender:
        loop = threading.Thread(target=sender.run, args=(stop,), daemon=True)
        loop.start()
        try:
            got = other_receiver.wait_for(1, timeout_s=ARRIVAL_BOUND_S)
            assert got[0].body == b'{"n": 0}'
            assert hanging.hold is not None and not hanging.hold.is_set()  # A's requests still hang
            assert len(hanging.wait_for(2)) == 2  # and there are just two of them: its limit
        finally:
            stop.set()
            assert hanging.hold is not None
            hanging.hold.set()
            loop.join(30)
    assert not loop.is_alive()
    assert len(hanging.requests) == 2
    with db.read() as session:
        rows = session.query(OutboxItem).order_by(OutboxItem.id).all()
        delivered = [row.url for row in rows if row.delivered_at is not None]
        untried = [row for row in rows if row.attempts == 0]
    assert sorted(delivered) == sorted([hanging.url, hanging.url, other_receiver.url])
    assert len(untried) == 3  # never claimed: no lease ran out on them in memory


def test_send_due_posts_concurrently_within_the_global_limit(
    db: Database, hanging: Receiver, other_receiver: Receiver
) -> None:
    """With room for two in flight, one pass sends both destinations' first rows while A hangs."""
    enqueue(db, hanging.url, 3, NOW - dt.timedelta(minutes=1))
    enqueue(db, other_receiver.url, 1, NOW)
    settings = CallbackSettings(allow_private=True, total_timeout_s=110.0, max_concurrent=2,
                                max_per_destination=1)
    with CallbackSender(db, SECRETS, settings, now=lambda: NOW) as sender:
        passing = threading.Thread(target=sender.send_due, args=(NOW,), daemon=True)
        passing.start()
        try:
            other_receiver.wait_for(1, timeout_s=ARRIVAL_BOUND_S)
            assert len(hanging.wait_for(1)) == 1
        finally:
            assert hanging.hold is not None
            hanging.hold.set()
            passing.join(30)
    assert not passing.is_alive()
    assert len(hanging.requests) == 3  # the pass went on with A's rows, one at a time


@pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
def test_claims_leave_the_busy_destinations_rows_in_the_store(db: Database) -> None:
    urls = ["https://Hooks.Example:8443/a", "https://hooks.example:8443?x=1", "https://hooks.example:8443",
            "https://hooks.example:8443.evil.test/a", "https://hooks.example/a", "http://hooks.example:8443/a",
            "https://hooks.example:8443%/a"]
    for url in urls:
        enqueue(db, url, 1, NOW)
    with db.transaction() as session:
        claimed = outbox.claim_due(session, NOW, 60, 50, exclude=["https://hooks.example:8443"])
    assert sorted(item.url for item in claimed) == sorted(urls[3:])
    with db.transaction() as session:
        outbox.release(session, claimed[0].id, NOW)
        again = outbox.claim_due(session, NOW, 60, 50, exclude=["https://hooks.example:8443"])
    assert [item.id for item in again] == [claimed[0].id] and again[0].attempts == 1
