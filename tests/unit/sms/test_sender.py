"""The SMS sender against a real SQLite store and a stand-in ESME: statuses, charges, the tts fallback."""

from __future__ import annotations

import asyncio
from typing import Any

from sms import gsm
from sms.sender import FallbackRequest, SenderOptions, SmsSender
from store import ledger, queue
from store.clock import utc_now
from store.errors import InsufficientBalance
from tests.unit.sms.conftest import FUNDS, SMS_RATE, Store
from tests.unit.sms.stand_in import StandInEsme, add_sms, read, run_until

LONG = "The quick brown fox jumps over the lazy dog. " * 7  # 315 GSM-7 characters: 3 parts


def options(**overrides: object) -> SenderOptions:
    return SenderOptions(worker_id="test:1", poll_interval_s=0.05, **overrides)  # type: ignore[arg-type]


def finished(store: Store, message_id: str) -> bool:
    return read(store.db, message_id).finished_at is not None


def balance(store: Store) -> int:
    with store.db.read() as session:
        return ledger.balance(session, store.owner_id)


def test_multipart_message_is_delivered_and_charged_per_part(store: Store) -> None:
    message_id = add_sms(store, LONG)
    sender = SmsSender(store.db, options(), now=utc_now)
    esme = StandInEsme(sender)
    asyncio.run(run_until(sender, esme, lambda: finished(store, message_id)))
    message = read(store.db, message_id)
    assert (message.status_code, message.status_text) == (200, "Delivered")
    assert [p.state for p in message.sms_parts] == ["DELIVRD"] * 3
    assert message.smsc_ids == ["1", "2", "3"]  # stored normalised (sms.receipts.normalise_smsc_id)
    assert message.cost == 3 * SMS_RATE and balance(store) == FUNDS - 3 * SMS_RATE
    assert [p.key for p in esme.parts] == [f"{message_id}:{n}" for n in (1, 2, 3)]
    assert {p.destination for p in esme.parts} == {"12505550123"} and esme.parts[0].source == "+12505550100"
    texts = [gsm.decode(p.short_message, p.data_coding, p.esm_class) for p in esme.parts]
    assert "".join(t for t, _ in texts) == LONG
    assert {c.reference for _, c in texts if c is not None} == {0}  # the first long message to the number


def test_ucs2_text_is_sent_as_ucs2(store: Store) -> None:
    message_id = add_sms(store, "你好，世界 ¿Cómo estás?")
    sender = SmsSender(store.db, options(), now=utc_now)
    esme = StandInEsme(sender)
    asyncio.run(run_until(sender, esme, lambda: finished(store, message_id)))
    assert esme.parts[0].data_coding == 0x08
    assert read(store.db, message_id).status_code == 200


def test_pending_receipts_leave_it_sent_to_smsc(store: Store) -> None:
    message_id = add_sms(store, LONG)
    sender = SmsSender(store.db, options(), now=utc_now)
    esme = StandInEsme(sender, receipt_state=lambda part: "DELIVRD" if part < 3 else None)
    asyncio.run(run_until(sender, esme, lambda: read(store.db, message_id).status_code == 110))
    message = read(store.db, message_id)
    assert (message.status_text, message.finished_at, message.cost) == ("Sent to SMSC", None, None)
    assert [p.state for p in message.sms_parts] == ["DELIVRD", "DELIVRD", ""]


def test_one_undelivered_part_makes_it_undeliverable(store: Store) -> None:
    message_id = add_sms(store, LONG)
    sender = SmsSender(store.db, options(), now=utc_now)
    esme = StandInEsme(sender, receipt_state=lambda part: "UNDELIV" if part == 2 else "DELIVRD")
    asyncio.run(run_until(sender, esme, lambda: finished(store, message_id)))
    message = read(store.db, message_id)
    assert (message.status_code, message.status_text) == (605, "Undeliverable")
    assert message.smsc_error == "UNDELIV err:001"
    assert message.cost == 3 * SMS_RATE  # every part was sent


def test_expired_receipt(store: Store) -> None:
    message_id = add_sms(store, "short")
    sender = SmsSender(store.db, options(), now=utc_now)
    asyncio.run(run_until(sender, StandInEsme(sender, receipt_state=lambda _p: "EXPIRED"),
                          lambda: finished(store, message_id)))
    assert read(store.db, message_id).status_code == 606


def test_refused_part_charges_only_accepted_parts(store: Store) -> None:
    message_id = add_sms(store, LONG)
    sender = SmsSender(store.db, options(), now=utc_now)
    esme = StandInEsme(sender, refuse={3: 0x45}, receipt_state=lambda _p: None)
    asyncio.run(run_until(sender, esme, lambda: finished(store, message_id)))
    message = read(store.db, message_id)
    assert (message.status_code, message.status_text) == (605, "Undeliverable")
    assert message.smsc_error == "0x00000045 ESME_RSUBMITFAIL"
    assert message.cost == 2 * SMS_RATE and balance(store) == FUNDS - 2 * SMS_RATE


def test_text_over_the_part_cap_is_refused_unsent(store: Store) -> None:
    message_id = add_sms(store, LONG)
    sender = SmsSender(store.db, options(max_parts=2), now=utc_now)
    esme = StandInEsme(sender)
    asyncio.run(run_until(sender, esme, lambda: finished(store, message_id)))
    message = read(store.db, message_id)
    assert (message.status_code, message.status_text, message.cost) == (511, "INVALID TXT", 0)
    assert esme.parts == [] and balance(store) == FUNDS


class Fallback:
    """The service's submit function as the sender sees it: records requests, answers as told."""

    def __init__(self, answer: str | Exception | None) -> None:
        self.answer = answer
        self.requests: list[FallbackRequest] = []

    def __call__(self, request: FallbackRequest) -> str | None:
        self.requests.append(request)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_refused_sms_falls_back_to_a_tts_call(store: Store) -> None:
    message_id = add_sms(store, "Server down", tts_fallback=True)
    fallback = Fallback("f" * 32)
    sender = SmsSender(store.db, options(), fallback=fallback, now=utc_now)
    asyncio.run(run_until(sender, StandInEsme(sender, refuse={1: 0x0B}), lambda: finished(store, message_id)))
    message = read(store.db, message_id)
    assert (message.status_code, message.status_text) == (605, f"Undeliverable; sent as TTS call {'f' * 32}")
    (request,) = fallback.requests
    assert (request.sms_id, request.phone, request.text, request.callerid) == (
        message_id, "+12505550123", "Server down", "+12505550100")


def test_undeliverable_receipt_falls_back_too(store: Store) -> None:
    message_id = add_sms(store, LONG, tts_fallback=True)
    fallback = Fallback("e" * 32)
    sender = SmsSender(store.db, options(), fallback=fallback, now=utc_now)
    esme = StandInEsme(sender, receipt_state=lambda _p: "UNDELIV")  # every part fails: one fallback
    asyncio.run(run_until(sender, esme, lambda: finished(store, message_id)))
    message = read(store.db, message_id)
    assert message.status_text == f"Undeliverable; sent as TTS call {'e' * 32}"
    assert message.smsc_error == "UNDELIV err:001" and message.cost == 3 * SMS_RATE
    assert len(fallback.requests) == 1


def test_no_fallback_for_numbers_known_to_take_sms(store: Store) -> None:
    message_id = add_sms(store, "Server down", tts_fallback=True)
    fallback = Fallback(None)
    sender = SmsSender(store.db, options(), fallback=fallback, now=utc_now)
    asyncio.run(run_until(sender, StandInEsme(sender, refuse={1: 0x0B}), lambda: finished(store, message_id)))
    assert read(store.db, message_id).status_text == "Undeliverable"
    assert len(fallback.requests) == 1


def test_refused_fallback_is_named_in_the_status(store: Store) -> None:
    message_id = add_sms(store, "Server down", tts_fallback=True)
    fallback = Fallback(InsufficientBalance("need more"))
    sender = SmsSender(store.db, options(), fallback=fallback, now=utc_now)
    asyncio.run(run_until(sender, StandInEsme(sender, refuse={1: 0x0B}), lambda: finished(store, message_id)))
    message = read(store.db, message_id)
    assert message.status_text == f"Undeliverable; TTS fallback refused: {InsufficientBalance.status_text}"


def test_without_tts_flag_no_fallback_is_tried(store: Store) -> None:
    message_id = add_sms(store, "Server down", tts_fallback=False)
    fallback = Fallback("d" * 32)
    sender = SmsSender(store.db, options(), fallback=fallback, now=utc_now)
    asyncio.run(run_until(sender, StandInEsme(sender, refuse={1: 0x0B}), lambda: finished(store, message_id)))
    assert read(store.db, message_id).status_text == "Undeliverable" and fallback.requests == []


def test_many_messages_each_get_their_own_status(store: Store) -> None:
    ids = [add_sms(store, f"message {n}", phone=f"+1250555{n:04d}") for n in range(40)]
    sender = SmsSender(store.db, options(batch=7), now=utc_now)
    esme = StandInEsme(sender)
    asyncio.run(run_until(sender, esme, lambda: all(finished(store, i) for i in ids)))
    assert {read(store.db, i).status_code for i in ids} == {200}
    assert len(esme.parts) == 40 and balance(store) == FUNDS - 40 * SMS_RATE


def test_expired_then_undeliverable_for_one_part_ends_undeliverable(store: Store) -> None:
    message_id = add_sms(store, "short")
    sender = SmsSender(store.db, options(), now=utc_now)
    esme = StandInEsme(sender, receipt_state=lambda _p: ("EXPIRED", "UNDELIV"))
    asyncio.run(run_until(sender, esme, lambda: read(store.db, message_id).status_code == 605))
    message = read(store.db, message_id)
    assert (message.status_text, message.smsc_error, message.cost) == ("Undeliverable", "UNDELIV err:001",
                                                                      SMS_RATE)
    assert balance(store) == FUNDS - SMS_RATE  # raised, not charged twice
    kinds = [e.kind for e in _events(store, message_id) if e.kind != "receipt"]
    assert kinds[-2:] == ["expired", "undeliverable"]


def test_undeliverable_is_not_turned_back_by_a_late_delivered(store: Store) -> None:
    message_id = add_sms(store, LONG)
    sender = SmsSender(store.db, options(), now=utc_now)
    esme = StandInEsme(sender, receipt_state=lambda p: ("UNDELIV", "DELIVRD") if p == 1 else "DELIVRD")
    asyncio.run(run_until(sender, esme, lambda: [p.state for p in read(store.db, message_id).sms_parts]
                          == ["UNDELIV", "DELIVRD", "DELIVRD"]))
    assert read(store.db, message_id).status_code == 605


def test_no_receipt_ends_sent_no_receipt_then_a_late_receipt_raises_it(store: Store) -> None:
    message_id = add_sms(store, LONG)
    sender = SmsSender(store.db, options(receipt_timeout_s=0.2), now=utc_now)
    esme = StandInEsme(sender, receipt_state=lambda p: "DELIVRD" if p == 1 else None)

    async def scenario() -> None:
        await run_until(sender, esme, lambda: finished(store, message_id))
        message = read(store.db, message_id)
        assert (message.status_code, message.status_text) == (210, "Sent, no receipt")
        assert message.cost == 3 * SMS_RATE and balance(store) == FUNDS - 3 * SMS_RATE
        assert [p.state for p in message.sms_parts] == ["DELIVRD", "", ""]
        late = SmsSender(store.db, options(receipt_timeout_s=0.2), now=utc_now)
        again = StandInEsme(late, receipt_state=lambda _p: None)
        for smsc_id in message.smsc_ids[1:]:
            again.receipt(smsc_id, "DELIVRD")
        await run_until(late, again, lambda: read(store.db, message_id).status_code == 200)

    asyncio.run(scenario())
    assert read(store.db, message_id).status_text == "Delivered" and balance(store) == FUNDS - 3 * SMS_RATE


def test_a_message_still_waiting_within_the_timeout_is_left_alone(store: Store) -> None:
    waiting = add_sms(store, "short")
    sender = SmsSender(store.db, options(receipt_timeout_s=3600), now=utc_now)
    asyncio.run(run_until(sender, StandInEsme(sender, receipt_state=lambda _p: None),
                          lambda: read(store.db, waiting).status_code == 110))
    assert read(store.db, waiting).finished_at is None


def _events(store: Store, message_id: str) -> list[Any]:
    with store.db.read() as session:
        events = list(queue.get_message(session, message_id).events)
        session.expunge_all()
        return events
