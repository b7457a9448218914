"""sms.pdu: framing and the bodies, against hand-made octets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms import pdu
from sms.errors import PduError


def test_enquire_link_octets() -> None:
    assert pdu.Pdu(pdu.ENQUIRE_LINK, 0, 7).to_bytes() == bytes.fromhex("00000010000000150000000000000007")


def test_bind_body() -> None:
    body = pdu.Bind("test", "pw").to_body()
    assert body == b"test\x00pw\x00\x00\x34\x00\x00\x00"
    assert pdu.Bind.from_body(body) == pdu.Bind("test", "pw")
    with pytest.raises(PduError):
        pdu.Bind("a" * 16, "pw").to_body()


def test_submit_sm_body_layout() -> None:
    sm = pdu.ShortMessage("12505550100", "IVR", b"hi", data_coding=0, esm_class=0x40, registered_delivery=1,
                          source_ton=1, source_npi=1, dest_ton=5, dest_npi=0,
                          tlvs={pdu.TLV_SAR_MSG_REF_NUM: b"\x00\x07"})
    body = sm.to_body()
    assert body == (b"\x00" + b"\x01\x01" + b"12505550100\x00" + b"\x05\x00" + b"IVR\x00" + b"\x40\x00\x00"
                    + b"\x00" + b"\x00" + b"\x01\x00\x00\x00" + b"\x02hi" + b"\x02\x0c\x00\x02\x00\x07")
    assert pdu.ShortMessage.from_body(body) == sm


def test_long_short_message_refused() -> None:
    with pytest.raises(PduError):
        pdu.ShortMessage("1", "2", b"x" * 255).to_body()


@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=40)), max_size=6),
       st.integers(1, 30))
def test_framing_any_split(items: list[tuple[int, bytes]], cut: int) -> None:
    wire = b"".join(pdu.Pdu(command, 0, i + 1, body).to_bytes() for i, (command, body) in enumerate(items))
    buffer = bytearray()
    got: list[pdu.Pdu] = []
    for start in range(0, len(wire), cut):
        buffer += wire[start : start + cut]
        got.extend(pdu.take_pdus(buffer))
    assert [(p.command_id, p.body) for p in got] == items
    assert buffer == bytearray()


def test_bad_length_and_truncated_body() -> None:
    with pytest.raises(PduError):
        list(pdu.take_pdus(bytearray(bytes.fromhex("00000004000000150000000000000001"))))
    with pytest.raises(PduError):
        pdu.ShortMessage.from_body(b"\x00\x01\x01abc")
    assert pdu.read_message_id(b"") == "" and pdu.read_message_id(b"abc\x00") == "abc"
    assert pdu.status_name(0x58) == "ESME_RTHROTTLED" and pdu.status_name(0x1234) == "0x00001234"
