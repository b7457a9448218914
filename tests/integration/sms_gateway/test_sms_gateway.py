"""SMS end to end: the `matrix` route -> the store -> the SMS sender -> the node SMSC -> receipts ->
matrix_status; incoming SMS -> history, do-not-call, HELP answers and the signed webhook."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest

from api.core.signing import SIGNATURE_HEADER, CallbackSecrets, verify
from api.runtime.callbacks import CallbackSender
from sms import gsm, keywords
from store import ledger, lists, outbox, queue
from store.models import Message
from tests.integration.sms_gateway.conftest import (
    FUNDS,
    NUMBER,
    PASSWORD,
    SMS_RATE,
    USER,
    Gw,
    Received,
    wait_for,
)

PHONE = "+12505550123"


def submits_to(gw: Gw, destination: str) -> list[dict[str, Any]]:
    return [s for s in gw.smsc.state()["submits"] if s["destination"] == destination.lstrip("+")]


def status(gw: Gw, message_id: str) -> dict[str, str]:
    return gw.get("matrix_status", id=message_id)


def delivered(gw: Gw, message_id: str) -> dict[str, str]:
    final: dict[str, str] = wait_for(lambda: (a := status(gw, message_id))["STATUSCODE"] == "200" and a,
                                     what="Delivered")
    return final


def balance(gw: Gw) -> int:
    with gw.gateway.db.read() as session:
        message = session.query(Message).first()
        assert message is not None
        return ledger.balance(session, message.account_id)


def test_matrix_to_delivered(gw: Gw) -> None:
    answer = gw.get("matrix", phone=PHONE, txt="Adam, web server is down", callerid="+12505550100")
    assert (answer["STATUSCODE"], answer["STATUSTXT"]) == ("200", "OK"), answer
    final = delivered(gw, answer["ID"])
    assert final["STATUSTXT"] == "Delivered"
    (submit,) = submits_to(gw, PHONE)
    assert submit["source"] == "12505550100" and submit["registered_delivery"] & 1
    assert balance(gw) == FUNDS - SMS_RATE


def test_300_characters_go_as_two_parts_charged_per_part(gw: Gw) -> None:
    text = ("0123456789" * 30)
    answer = gw.get("matrix", phone=PHONE, txt=text)
    delivered(gw, answer["ID"])
    parts = submits_to(gw, PHONE)
    assert len(parts) == 2
    decoded = [gsm.decode(bytes.fromhex(p["sm_hex"]), p["data_coding"], p["esm_class"])
               for p in parts]
    assert "".join(t for t, _ in sorted(decoded, key=lambda d: d[1].seq if d[1] else 0)) == text
    assert balance(gw) == FUNDS - 2 * SMS_RATE


def test_ucs2(gw: Gw) -> None:
    text = "你好，服务器已恢复。¿Qué tal?"
    answer = gw.get("matrix", phone=PHONE, txt=text)
    delivered(gw, answer["ID"])
    (submit,) = submits_to(gw, PHONE)
    assert submit["data_coding"] == 8
    assert gsm.decode(bytes.fromhex(submit["sm_hex"]), 8, submit["esm_class"])[0] == text


def _deliver_the_webhook(gw: Gw) -> tuple[CallbackSecrets, Received]:
    """Send the one due callback to the receiver with the real callback sender: the secrets it signed
    with and the one request the receiver got."""
    secrets = CallbackSecrets.load(gw.settings.callbacks, gw.settings.data_dir)
    with CallbackSender(gw.gateway.db, secrets, gw.settings.callbacks) as sender:
        assert sender.send_due().delivered == 1
    (request,) = gw.receiver.requests
    return secrets, request


def test_incoming_sms_reaches_the_webhook_signed(gw: Gw) -> None:
    gw.smsc.send_mo("+16045550199", NUMBER, "Running late, 10 min")
    item = wait_for(lambda: _webhook_rows(gw), what="the webhook in the outbox")
    secrets, request = _deliver_the_webhook(gw)
    fields = dict(parse_qsl(request.body.decode()))
    assert list(fields) == ["phonefrom", "phoneto", "id", "orgserver", "timestamp", "txt"]
    assert fields["phonefrom"] == "+16045550199" and fields["phoneto"] == NUMBER
    assert fields["txt"] == "Running late, 10 min" and fields["orgserver"] == "gw.test"
    assert fields["id"] == item and int(fields["timestamp"]) > 0
    secret = secrets.for_ref(f"account:{_owner(gw)}")
    assert verify(secret, request.body, request.headers[SIGNATURE_HEADER])
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_stop_then_new_sms_is_refused_with_502(gw: Gw) -> None:
    sender = "+12505550177"
    gw.smsc.send_mo(sender, NUMBER, "STOP")
    confirmation = wait_for(lambda: submits_to(gw, sender), what="the STOP confirmation")
    assert confirmation[0]["source"] == NUMBER.lstrip("+")
    answer = gw.get("matrix", phone=sender, txt="Another alert")
    assert (answer["STATUSCODE"], answer["STATUSTXT"]) == ("502", "PIN IN DO NOT CALL DATABASE")


def test_help_is_answered(gw: Gw) -> None:
    sender = "+12505550188"
    gw.smsc.send_mo(sender, NUMBER, "help")
    (answer,) = wait_for(lambda: submits_to(gw, sender), what="the HELP answer")
    text, _ = gsm.decode(bytes.fromhex(answer["sm_hex"]), answer["data_coding"], answer["esm_class"])
    assert text == "Test alerts. Reply STOP." and answer["source"] == NUMBER.lstrip("+")


def test_tts_fallback_when_the_smsc_refuses_an_ambiguous_number(gw: Gw) -> None:
    gw.smsc.configure(refuse_next=1, refuse_status=0x0B)
    answer = gw.get("matrix", phone=PHONE, txt="Server down", tts=1)  # North American: ambiguous type
    final = wait_for(lambda: (a := status(gw, answer["ID"]))["STATUSCODE"] == "605" and a, what="605")
    assert final["STATUSTXT"].startswith("Undeliverable; sent as TTS call ")
    fallback_id = final["STATUSTXT"].rsplit(" ", 1)[1]
    with gw.gateway.db.read() as session:
        call = queue.get_message(session, fallback_id)
        sms = queue.get_message(session, answer["ID"])
        assert (call.kind, call.phone, call.body, call.status_code) == ("tts", PHONE, "Server down", 100)
        assert sms.smsc_error == "0x0000000B ESME_RINVDSTADR" and sms.cost == 0


def test_smsc_restarted_mid_batch_loses_nothing_and_resends_only_unanswered_parts(gw: Gw) -> None:
    phones = [f"+1250555{n:04d}" for n in range(1000, 1150)]
    answer = gw.client.get("/matrix", params={"username": "owner@example.com", "password": "pass7782",
                                              "phone": ",".join(phones), "txt": "batch"})
    ids = [line.split(": ")[1] for line in answer.text.splitlines() if line.startswith("ID: ")]
    assert len(ids) == len(phones)
    wait_for(lambda: gw.smsc.state()["stats"]["accepted"] >= 20, what="the batch to start")
    gw.smsc.configure(hold=True)  # submits now go unanswered, as to a dying SMSC: the kill lands mid-batch
    wait_for(lambda: gw.smsc.state()["stats"]["held"] >= 1, what="a submit held")
    gw.smsc.kill()
    before_kill = [r["destination"] for r in gw.smsc.recorded()]
    assert len(before_kill) < len(phones)  # killed mid-batch
    gw.smsc.start()
    wait_for(lambda: _finished(gw) >= len(ids), timeout_s=60.0, what="every message finished")
    with gw.gateway.db.read() as session:
        codes = {queue.get_message(session, i).status_code for i in ids}
    assert codes == {200}
    destinations = [r["destination"] for r in gw.smsc.recorded()]
    assert set(destinations) == {p.lstrip("+") for p in phones}  # nothing lost
    # SMPP delivers at least once: a submit_sm the SMSC recorded but whose response the kill cut off is
    # sent again after the restart. Only such parts may stand twice: recorded before the kill, at most
    # one window of them, each twice at most.
    doubled = [d for d in set(destinations) if destinations.count(d) > 1]
    assert all(destinations.count(d) == 2 and d in before_kill for d in doubled)
    assert len(doubled) <= gw.settings.sms.window


def _finished(gw: Gw) -> int:
    with gw.gateway.db.read() as session:
        return session.query(Message).filter(Message.kind == "sms", Message.finished_at.is_not(None)).count()


def _webhook_rows(gw: Gw) -> str | None:
    """The ID of the incoming message once its webhook is in the outbox."""
    with gw.gateway.db.read() as session:
        mo = session.query(Message).filter(Message.kind == "mo").first()
        return mo.id if mo is not None and outbox.for_message(session, mo.id) else None


def _owner(gw: Gw) -> int:
    with gw.gateway.db.read() as session:
        mo = session.query(Message).filter(Message.kind == "mo").one()
        return mo.account_id


def _texts_to(gw: Gw, phone: str, count: int, what: str) -> list[str]:
    """The texts of the first `count` SMS the SMSC accepted for `phone`, once that many arrived."""
    found = wait_for(lambda: len(s := submits_to(gw, phone)) >= count and s, what=what)
    return [gsm.decode(bytes.fromhex(p["sm_hex"]), p["data_coding"], p["esm_class"])[0] for p in found]


@pytest.mark.sms_service(brand="Acme Clinic", help_contact="+1 800 555 0100", help_text=keywords.DEFAULT_HELP,
                         stop_reply=keywords.DEFAULT_STOP)
def test_default_keyword_answers_name_the_brand_and_contact(gw: Gw) -> None:
    """HELP, STOP and START with the shipped texts: each answered from the virtual number, STOP blocks the
    sender until START (UNSTOP here) takes it off the list again."""
    sender = "+12505550166"
    gw.smsc.send_mo(sender, NUMBER, "Help")
    (help_text,) = _texts_to(gw, sender, 1, "the HELP answer")
    assert help_text == ("Acme Clinic: reminders and alerts. Reply STOP to unsubscribe. "
                         "Help: +1 800 555 0100")
    gw.smsc.send_mo(sender, NUMBER, "stop")
    stop_text = _texts_to(gw, sender, 2, "the STOP confirmation")[1]
    assert stop_text == ("Acme Clinic: you are unsubscribed and will receive no more messages. "
                         "Reply START to resubscribe.")
    refused = gw.get("matrix", phone=sender, txt="Your appointment is tomorrow")
    assert (refused["STATUSCODE"], refused["STATUSTXT"]) == ("502", "PIN IN DO NOT CALL DATABASE")
    gw.smsc.send_mo(sender, NUMBER, "UNSTOP")
    start_text = _texts_to(gw, sender, 3, "the START confirmation")[2]
    assert start_text == "Acme Clinic: you are subscribed again. Reply STOP to unsubscribe, HELP for help."
    answer = gw.get("matrix", phone=sender, txt="Your appointment is tomorrow")
    assert answer["STATUSCODE"] == "200", answer
    assert delivered(gw, answer["ID"])["STATUSTXT"] == "Delivered"
    assert all(s["source"] == NUMBER.lstrip("+") for s in submits_to(gw, sender)[:3])


def test_a_number_added_over_v1_receives_sms(gw: Gw) -> None:
    """The seed's incoming-SMS feature set up by the owner alone: a number added over /v1/numbers in a
    national form receives an MO from the SMSC and forwards it to its webhook; DELETE releases it."""
    auth = (USER, PASSWORD)
    added = gw.client.post("/v1/numbers", auth=auth,
                           json={"number": "(250) 555-0111", "webhook_url": gw.receiver.url + "/second"})
    assert added.status_code == 201 and added.json()["number"] == "+12505550111", added.text
    gw.smsc.send_mo("+16045550199", "+12505550111", "On my way")
    mo_id = wait_for(lambda: _webhook_rows(gw), what="the webhook in the outbox")
    _, request = _deliver_the_webhook(gw)
    fields = dict(parse_qsl(request.body.decode()))
    assert (fields["id"], fields["phoneto"], fields["txt"]) == (mo_id, "+12505550111", "On my way")
    assert gw.client.delete("/v1/numbers/+12505550111", auth=auth).status_code == 204
    with gw.gateway.db.read() as session:
        assert lists.virtual_number(session, "+12505550111") is None
