"""Operator settings through the whole gateway, as the node SMSC receives them: packed GSM-7, the default
sender, short-code senders, validity and data_coding from the settings."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.sms.conftest import smsc  # noqa: F401  (fixture)
from tests.integration.sms_gateway.configured import MakeGw, make_gw  # noqa: F401  (fixture)
from tests.integration.sms_gateway.conftest import Gw, receiver, wait_for  # noqa: F401  (fixture)
from tests.unit.sms.test_operator import reference_pack

pytestmark = pytest.mark.integration

PHONE = "+12505550123"


def submit(gw: Gw, **params: Any) -> list[dict[str, Any]]:
    answer = gw.get("matrix", phone=PHONE, **params)
    assert answer["STATUSCODE"] == "200", answer
    wait_for(lambda: gw.get("matrix_status", id=answer["ID"])["STATUSCODE"] == "200", what="Delivered")
    subs: list[dict[str, Any]] = gw.smsc.state()["submits"]
    return subs


def test_packed_gsm7_as_the_smsc_receives_it(make_gw: MakeGw) -> None:  # noqa: F811
    gw = make_gw(smpp={"gsm_packed": True})
    (sub,) = submit(gw, txt="hellohello")
    assert sub["sm_hex"] == "e8329bfd4697d9ec37" and sub["data_coding"] == 0


def test_packed_concatenated_parts_with_fill_bit(make_gw: MakeGw) -> None:  # noqa: F811
    gw = make_gw(smpp={"gsm_packed": True})
    text = "Ext {€} " + "x" * 150 + "[~]" + "y" * 20  # escapes in both parts
    subs = sorted(submit(gw, txt=text), key=lambda s: s["sm_hex"][10:12])
    assert len(subs) == 2
    escaped = {"{": b"\x1b\x28", "}": b"\x1b\x29", "€": b"\x1b\x65", "[": b"\x1b\x3c", "~": b"\x1b\x3d",
               "]": b"\x1b\x3e"}  # 23.038's extension table, written out
    septets = b"".join(escaped[ch] if ch in escaped else ch.encode("ascii") for ch in text)
    first, second = (bytes.fromhex(s["sm_hex"]) for s in subs)
    assert first[:3] == second[:3] == b"\x05\x00\x03" and first[3] == second[3]  # UDH, one reference
    assert (first[4:6], second[4:6]) == (b"\x02\x01", b"\x02\x02")
    assert first[6:] == reference_pack(bytes(septets[:153]), 1) and len(first) == 140
    assert second[6:] == reference_pack(bytes(septets[153:]), 1)


def test_default_sender_when_the_client_gives_none(make_gw: MakeGw) -> None:  # noqa: F811
    gw = make_gw(service={"default_source": "ACME"})
    (sub,) = submit(gw, txt="no callerid")
    assert (sub["source"], sub["source_ton"], sub["source_npi"]) == ("ACME", 5, 0)


def test_no_sender_at_all_leaves_it_to_the_smsc(make_gw: MakeGw) -> None:  # noqa: F811
    gw = make_gw()
    (sub,) = submit(gw, txt="no callerid")
    assert (sub["source"], sub["source_ton"], sub["source_npi"]) == ("", 0, 0)


def test_short_code_callerid(make_gw: MakeGw) -> None:  # noqa: F811
    gw = make_gw(smpp={"validity_period": "48h", "gsm_data_coding": 0x01})
    (sub,) = submit(gw, txt="from a short code", callerid="72345")
    assert (sub["source"], sub["source_ton"], sub["source_npi"]) == ("72345", 3, 0)
    assert sub["validity_period"] == "000002000000000R" and sub["data_coding"] == 0x01
