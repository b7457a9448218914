"""The callback sender against a real HTTP receiver on 127.0.0.1: signed delivery, retries with backoff,
giving up on a dead URL, refusing private addresses, timeouts, and the background loop."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading

import pytest
from argon2 import PasswordHasher

from api.core.signing import SIGNATURE_HEADER, CallbackSecrets, CallbackSettings, verify
from api.runtime.callbacks import DELIVERY_HEADER, CallbackSender
from store import accounts, ledger, outbox, queue
from store.db import Database
from store.models import OutboxItem
from tests.integration.callbacks.conftest import Receiver

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 11, 24, 12, 0, 0, tzinfo=dt.UTC)
SECRETS = CallbackSecrets(b"k" * 32)
LOCAL = CallbackSettings(allow_private=True, total_timeout_s=5.0)
HASHER = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


def cancelled_with_callback(db: Database, url: str) -> tuple[int, str]:
    """(owner id, message id) of a cancelled message whose status callback waits in the outbox."""
    with db.transaction() as session:
        owner = accounts.create_account(
            session, username="o@example.com", password="pw", now=NOW, hasher=HASHER
        )
        ledger.top_up(session, owner.id, 1_000_000, NOW)
        spec = queue.NewMessage(
            kind="tts", phone="+12506063167", job_id=queue.new_message_id(), reserved=1000, callback_url=url
        )
        message = queue.create_message(session, owner, spec, NOW)
        ledger.reserve_for(session, owner, [message], NOW)
        queue.cancel(session, message.id, owner, NOW)
        return owner.id, message.id


def row(db: Database, message_id: str) -> OutboxItem:
    with db.read() as session:
        (item,) = outbox.for_message(session, message_id)
        session.expunge(item)  # keep its loaded state when the read transaction ends
        return item


@pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
def test_delivers_the_stored_body_signed_with_the_account_secret(db: Database, receiver: Receiver) -> None:
    owner_id, message_id = cancelled_with_callback(db, receiver.url)
    with CallbackSender(db, SECRETS, LOCAL, now=lambda: NOW) as sender:
        report = sender.send_due(NOW)
    assert (report.delivered, report.retrying, report.gave_up) == (1, 0, 0)
    (got,) = receiver.requests
    item = row(db, message_id)
    assert got.body == item.body.encode()
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers[DELIVERY_HEADER] == str(item.id)
    assert verify(SECRETS.for_account(owner_id), got.body, got.headers[SIGNATURE_HEADER])
    assert not verify(SECRETS.for_account(owner_id + 1), got.body, got.headers[SIGNATURE_HEADER])
    assert not verify(SECRETS.for_account(owner_id), got.body + b" ", got.headers[SIGNATURE_HEADER])
    document = json.loads(got.body)
    assert (document["ID"], document["STATUSCODE"], document["STATUSTXT"]) == (message_id, 604, "Cancelled")
    assert item.delivered_at == NOW and item.attempts == 1


def test_a_500_is_retried_after_the_backoff_and_then_delivered(db: Database, receiver: Receiver) -> None:
    _, message_id = cancelled_with_callback(db, receiver.url)
    receiver.statuses = [500]
    with CallbackSender(db, SECRETS, LOCAL, now=lambda: NOW) as sender:
        first = sender.send_due(NOW)
        assert (first.delivered, first.retrying) == (0, 1)
        assert "HTTP 500" in row(db, message_id).last_error
        assert sender.send_due(NOW + dt.timedelta(seconds=29)).attempted == 0
        second = sender.send_due(NOW + outbox.backoff(1) + dt.timedelta(seconds=1))
    assert second.delivered == 1
    assert len(receiver.requests) == 2
    assert receiver.requests[0].body == receiver.requests[1].body
    assert receiver.requests[0].headers[SIGNATURE_HEADER] == receiver.requests[1].headers[SIGNATURE_HEADER]
    item = row(db, message_id)
    assert item.delivered_at is not None and item.attempts == 2 and item.last_error == ""


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_dead_url_is_given_up_after_max_attempts(db: Database) -> None:
    _, message_id = cancelled_with_callback(db, f"http://127.0.0.1:{_dead_port()}/gone")
    settings = CallbackSettings(allow_private=True, max_attempts=3, connect_timeout_s=1.0)
    when = NOW
    reports = []
    with CallbackSender(db, SECRETS, settings, now=lambda: when) as sender:
        for _ in range(3):
            reports.append(sender.send_due(when))
            when = row(db, message_id).next_attempt_at
        later = sender.send_due(NOW + dt.timedelta(days=365))
    assert [(r.retrying, r.gave_up) for r in reports] == [(1, 0), (1, 0), (0, 1)]
    assert later.attempted == 0
    item = row(db, message_id)
    assert item.delivered_at is None and item.attempts == 3
    assert "ConnectError" in item.last_error


def test_private_addresses_are_refused_unless_allowed(db: Database, receiver: Receiver) -> None:
    _, message_id = cancelled_with_callback(db, receiver.url)
    with CallbackSender(db, SECRETS, CallbackSettings(), now=lambda: NOW) as sender:
        report = sender.send_due(NOW)
    assert report.gave_up == 1 and receiver.requests == []
    assert "private" in row(db, message_id).last_error


def test_allowed_networks_let_one_private_range_through(db: Database, receiver: Receiver) -> None:
    cancelled_with_callback(db, receiver.url)
    settings = CallbackSettings(allowed_networks=("127.0.0.0/8",))
    with CallbackSender(db, SECRETS, settings, now=lambda: NOW) as sender:
        assert sender.send_due(NOW).delivered == 1


def test_a_receiver_slower_than_the_timeout_is_retried(db: Database, receiver: Receiver) -> None:
    _, message_id = cancelled_with_callback(db, receiver.url)
    receiver.delay_s = 1.5
    settings = CallbackSettings(allow_private=True, total_timeout_s=0.3)
    with CallbackSender(db, SECRETS, settings, now=lambda: NOW) as sender:
        report = sender.send_due(NOW)
    assert report.retrying == 1
    assert "Timeout" in row(db, message_id).last_error


def test_a_redirect_is_not_followed(db: Database, receiver: Receiver) -> None:
    _, message_id = cancelled_with_callback(db, receiver.url)
    receiver.statuses = [302]
    with CallbackSender(db, SECRETS, LOCAL, now=lambda: NOW) as sender:
        assert sender.send_due(NOW).retrying == 1
    assert "HTTP 302" in row(db, message_id).last_error


def test_the_loop_sends_what_comes_due_until_stopped(db: Database, receiver: Receiver) -> None:
    settings = CallbackSettings(allow_private=True, poll_interval_s=0.05)
    stop = threading.Event()
    with CallbackSender(db, SECRETS, settings) as sender:
        thread = threading.Thread(target=sender.run, args=(stop,), daemon=True)
        thread.start()
        try:
            _, message_id = cancelled_with_callback(db, receiver.url)
            receiver.wait_for(1)
        finally:
            stop.set()
            thread.join(5)
    assert not thread.is_alive()
    assert receiver.requests[0].body == row(db, message_id).body.encode()
