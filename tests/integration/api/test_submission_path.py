"""The submission path written with prebuilt Core statements: what it stores is what the ORM path stored,
pre-parsed recipients are trusted only when parsed with the gateway's own settings, and the balance
stays the sum of the ledger."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from api.core.errors import InvalidPin
from api.core.phones import ParsedPhones, PhoneSettings
from api.core.service import Gateway
from store import ledger
from store.db import Database
from store.models import LedgerEntry, Message, MessageEvent
from tests.integration.api.conftest import BALANCE, DNC_PHONE, NOW, PASSWORD, SUBUSER, World

pytestmark = pytest.mark.integration


def test_a_submission_stores_messages_events_and_one_reservation_each(
    gateway: Gateway, db: Database, world: World
) -> None:
    caller = gateway.login(world.owner.username, PASSWORD)
    results = gateway.submit_tts(
        caller, phones=f"12506063167, {DNC_PHONE}", text="Adam, web server is down", repeat=2, response=True
    )
    assert [(r.phone, r.code) for r in results] == [("+12506063167", 100), (DNC_PHONE, 502)]
    with db.read() as session:
        queued = session.get(Message, results[0].message_id)
        refused = session.get(Message, results[1].message_id)
        assert queued is not None and refused is not None
        assert (queued.kind, queued.status_text, queued.rate, queued.reserved) == (
            "tts",
            "Queued",
            15_000,
            75_000,
        )
        assert queued.settings == {
            "text": "Adam, web server is down",
            "language": "us",
            "gender": "female",
            "repeat": 2,
            "response": True,
        }
        assert queued.created_at == NOW and queued.next_attempt_at == NOW and queued.finished_at is None
        assert queued.cost is None and queued.attempts == 0 and queued.job_id == refused.job_id
        assert (refused.status_code, refused.reserved, refused.cost, refused.finished_at) == (502, 0, 0, NOW)
        kinds = {e.message_id: e.kind for e in session.scalars(select(MessageEvent))}
        assert kinds == {queued.id: "queued", refused.id: "refused"}
        entries = session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "reserve")).all()
        assert [(e.message_id, e.amount, e.user_id) for e in entries] == [
            (queued.id, -75_000, caller.user_id)
        ]
        assert ledger.balance(session, caller.owner_id) == ledger.full_sum(session, caller.owner_id)
        assert ledger.balance(session, caller.owner_id) == BALANCE - 75_000


def test_a_subuser_reserves_from_its_owner(gateway: Gateway, db: Database, world: World) -> None:
    caller = gateway.login(SUBUSER, PASSWORD)
    (result,) = gateway.submit_tts(caller, phones="12506063167", text="hello")
    with db.read() as session:
        message = session.get(Message, result.message_id)
        assert message is not None and (message.account_id, message.user_id) == (
            world.owner.id,
            world.subuser.id,
        )
        assert ledger.balance(session, world.owner.id) == BALANCE - message.reserved


def test_parsed_recipients_are_used_as_given(gateway: Gateway, world: World) -> None:
    caller = gateway.login(world.owner.username, PASSWORD)
    parsed = ParsedPhones(("+12506063167", "+12506058145"), gateway.settings.phones)
    results = gateway.submit_tts(caller, phones=parsed, text="hello")
    assert [r.phone for r in results] == ["+12506063167", "+12506058145"]


def test_recipients_parsed_with_other_settings_are_parsed_again(gateway: Gateway, world: World) -> None:
    caller = gateway.login(world.owner.username, PASSWORD)
    foreign = ParsedPhones(("not-a-number",), PhoneSettings(default_region="FR"))
    with pytest.raises(InvalidPin):
        gateway.submit_tts(caller, phones=foreign, text="hello")
    with pytest.raises(InvalidPin):
        gateway.submit_tts(caller, phones=ParsedPhones((), gateway.settings.phones), text="hello")
