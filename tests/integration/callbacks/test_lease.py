"""A callback sender that lost its lease (another sender claimed the row again while its POST hung) does
not write its result over the other sender's: the failure is injected by claiming the row in the real
database, as the other sender's claim_due() would after the lease ran out."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

import pytest

from api.core.signing import CallbackSecrets, CallbackSettings
from api.runtime.callbacks import CallbackSender
from store import outbox
from store.db import Database
from store.models import OutboxItem
from tests.integration.callbacks.conftest import Receiver

pytestmark = pytest.mark.integration

SECRETS = CallbackSecrets(b"k" * 32)
HANG_GUARD_S = 60.0
"""Fails a test that would otherwise hang; no timing is asserted."""


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


@pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
def test_a_lost_lease_leaves_the_other_senders_result(
    db: Database, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.hold = threading.Event()
    with db.transaction() as session:
        item_id = outbox.enqueue(session, kind=outbox.CALLBACK, url=receiver.url, body="{}",
                                 now=dt.datetime.now(dt.UTC)).id
    settings = CallbackSettings(allow_private=True, total_timeout_s=110.0, poll_interval_s=0.05,
                                lease_s=30.0, heartbeat_s=0.05)
    stop = threading.Event()
    with caplog.at_level("INFO"), CallbackSender(db, SECRETS, settings) as sender:
        loop = threading.Thread(target=sender.run, args=(stop,), daemon=True)
        loop.start()
        try:
            receiver.wait_for(1)  # the POST hangs in the receiver
            later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)  # past any renewal of the lease
            with db.transaction() as session:  # the other sender's claim
                (taken,) = outbox.claim_due(session, later, 60.0, 1)
            assert taken.attempts == 2
            wait_until(lambda: "lost the lease of callback" in caplog.text, "the heartbeat to see the loss")
            with db.transaction() as session:  # the other sender's result
                assert outbox.failed(session, item_id, later, "HTTP 503 at the other sender", attempt=2)
        finally:
            receiver.hold.set()  # the first POST now succeeds...
            stop.set()
            loop.join(HANG_GUARD_S)
    assert not loop.is_alive()
    with db.read() as session:
        item = session.get_one(OutboxItem, item_id)
        # ...and is not recorded: the row is the other sender's
        assert (item.delivered_at, item.attempts) == (None, 2)
        assert item.last_error == "HTTP 503 at the other sender"
    assert "claimed again by another sender meanwhile; this attempt's result (delivered)" in caplog.text
