"""Receipts through the whole gateway, sent by the node SMSC: their order, their absence, and the forms
the SMSC message ID takes in them (docs/sms.md, "Receipts")."""

from __future__ import annotations

import pytest

from store import ledger, queue
from store.models import Message
from tests.integration.sms.conftest import smsc  # noqa: F401  (fixture)
from tests.integration.sms_gateway.configured import MakeGw, make_gw  # noqa: F401  (fixture)
from tests.integration.sms_gateway.conftest import FUNDS, SMS_RATE, Gw, receiver, wait_for  # noqa: F401

pytestmark = pytest.mark.integration

PHONE = "+12505550123"
LONG = "0123456789" * 30
"""Two parts."""

def send(gw: Gw, text: str = "Receipt test") -> str:
    answer = gw.get("matrix", phone=PHONE, txt=text)
    assert answer["STATUSCODE"] == "200", answer
    return answer["ID"]


def status_once(gw: Gw, message_id: str, code: str) -> dict[str, str] | None:
    answer = gw.get("matrix_status", id=message_id)
    return answer if answer["STATUSCODE"] == code else None


def receipts_answered(gw: Gw, count: int) -> bool:
    return sum(d["what"].startswith("receipt:") for d in gw.smsc.state()["delivers"]) >= count


def stored(gw: Gw, message_id: str) -> Message:
    with gw.gateway.db.read() as session:
        message = queue.get_message(session, message_id)
        _ = message.sms_parts, message.events
        session.expunge_all()
        return message


@pytest.mark.parametrize(("plan", "text", "expected"), [
    ([["EXPIRED", "UNDELIV"]], "Receipt test", ("605", "Undeliverable")),  # one part, two receipts
    ([["UNDELIV", "EXPIRED"]], "Receipt test", ("605", "Undeliverable")),
    ([["EXPIRED"], ["UNDELIV"]], LONG, ("605", "Undeliverable")),  # across the parts of one message
    ([["UNDELIV"], ["EXPIRED"]], LONG, ("605", "Undeliverable")),
    ([["UNDELIV", "DELIVRD"]], "Receipt test", ("605", "Undeliverable")),  # not turned back
    ([["DELIVRD"], ["ENROUTE", "DELIVRD"]], LONG, ("200", "Delivered")),
    ([["DELIVRD"], ["EXPIRED"]], LONG, ("606", "Expired")),
])
def test_final_status_does_not_depend_on_receipt_order(
    make_gw: MakeGw, plan: list[list[str]], text: str, expected: tuple[str, str]  # noqa: F811
) -> None:
    gw = make_gw()
    gw.smsc.configure(dlr_plan=plan)
    message_id = send(gw, text)
    wait_for(lambda: receipts_answered(gw, sum(map(len, plan))), what="every receipt answered")
    final = wait_for(lambda: status_once(gw, message_id, expected[0]), what=f"status {expected}")
    assert final["STATUSTXT"] == expected[1]
    message = stored(gw, message_id)
    assert message.cost == SMS_RATE * len(plan)  # a raised status is not charged again


def test_receipt_that_never_comes_ends_sent_no_receipt(make_gw: MakeGw) -> None:  # noqa: F811
    gw = make_gw(service={"receipt_timeout_s": 1.0})
    gw.smsc.configure(dlr=False)
    message_id = send(gw, LONG)
    wait_for(lambda: status_once(gw, message_id, "110"), what="Sent to SMSC")
    final = wait_for(lambda: status_once(gw, message_id, "210"), what="the receipt timeout")
    assert final["STATUSTXT"] == "Sent, no receipt"
    message = stored(gw, message_id)
    assert message.cost == 2 * SMS_RATE and [e.kind for e in message.events][-1] == "no_receipt"
    with gw.gateway.db.read() as session:
        assert ledger.balance(session, message.account_id) == FUNDS - 2 * SMS_RATE


@pytest.mark.parametrize(("id_form", "dlr_id_form", "receipt_id_form"), [
    ("hex", "decimal", "auto"),  # submit_sm_resp in hex, the receipt in decimal
    ("decimal", "hex", "auto"),  # and the reverse
    ("hex", "decimal", "hex_to_decimal"),
    ("decimal", "hex", "decimal_to_hex"),
    ("decimal", "unpadded", "auto"),  # leading zeros dropped
    ("hex", "lower", "same"),  # case
    ("base36", "upper", "auto"),
])
def test_receipt_id_in_another_form_still_finds_its_message(
    make_gw: MakeGw, id_form: str, dlr_id_form: str, receipt_id_form: str  # noqa: F811
) -> None:
    gw = make_gw(smpp={"receipt_id_form": receipt_id_form})
    gw.smsc.configure(id_form=id_form, dlr_id_form=dlr_id_form, dlr_tlv=False)  # only the text names the id
    message_id = send(gw, LONG)
    wait_for(lambda: status_once(gw, message_id, "200"), what="Delivered")
    texts = [d for d in gw.smsc.state()["delivers"] if d["what"].startswith("receipt:")]
    assert len(texts) == 2 and all(d["status"] == 0 for d in texts)
    submitted = [s["id"] for s in gw.smsc.state()["submits"]]
    assert sorted(p.smsc_id for p in stored(gw, message_id).sms_parts) == sorted(
        s.lstrip("0").upper() for s in submitted)


def test_receipted_message_id_tlv_is_preferred(make_gw: MakeGw) -> None:  # noqa: F811
    gw = make_gw(smpp={"receipt_id_form": "same"})  # the text's decimal form alone would not match
    gw.smsc.configure(id_form="hex", dlr_id_form="decimal", dlr_tlv=True)
    message_id = send(gw)
    wait_for(lambda: status_once(gw, message_id, "200"), what="Delivered")


def test_a_receipt_after_the_timeout_still_sets_the_status(make_gw: MakeGw) -> None:  # noqa: F811
    gw = make_gw(service={"receipt_timeout_s": 1.0})
    gw.smsc.configure(dlr_hold=True)  # the SMSC keeps the receipt until the message has timed out
    message_id = send(gw)
    wait_for(lambda: status_once(gw, message_id, "210"), what="the receipt timeout")
    gw.smsc.configure(dlr_hold=False)
    final = wait_for(lambda: status_once(gw, message_id, "200"), what="the late receipt")
    assert final["STATUSTXT"] == "Delivered"
    message = stored(gw, message_id)
    assert message.cost == SMS_RATE and [e.kind for e in message.events][-2:] == ["receipt", "delivered"]
    with gw.gateway.db.read() as session:
        assert ledger.balance(session, message.account_id) == FUNDS - SMS_RATE  # charged once
