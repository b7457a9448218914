"""sms.receipts: receipt parsing (TLVs and text form) and MO reassembly."""

from __future__ import annotations

import datetime as dt

from sms import gsm, pdu
from sms.receipts import Reassembler, address, is_receipt, parse_receipt

T0 = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
TEXT = ("id:0123456789 sub:001 dlvrd:001 submit date:2611241159 done date:2611241200 stat:DELIVRD err:000"
        " text:hi")


def receipt_sm(text: str = TEXT, **tlvs: bytes) -> pdu.ShortMessage:
    tags = {"rid": pdu.TLV_RECEIPTED_MESSAGE_ID, "state": pdu.TLV_MESSAGE_STATE,
            "net": pdu.TLV_NETWORK_ERROR_CODE}
    return pdu.ShortMessage("1", "2", text.encode(), esm_class=0x04,
                            tlvs={tags[k]: v for k, v in tlvs.items()})


def test_text_form() -> None:
    r = parse_receipt(receipt_sm())
    assert (r.smsc_id, r.state, r.error, r.done_at) == ("0123456789", "DELIVRD", "000", T0)
    assert r.text == TEXT


def test_tlvs_win_over_text() -> None:
    r = parse_receipt(receipt_sm(rid=b"abc\x00", state=bytes((5,))))
    assert (r.smsc_id, r.state) == ("abc", "UNDELIV")


def test_tlv_only_receipt() -> None:
    r = parse_receipt(receipt_sm("", rid=b"X1\x00", state=bytes((3,)), net=b"\x03\x00\x22"))
    assert (r.smsc_id, r.state, r.error, r.done_at) == ("X1", "EXPIRED", "030022", None)


def test_odd_states_and_case() -> None:
    r = parse_receipt(receipt_sm("ID:9 Stat:rejected Err:0B Done Date:261124120005 Text:"))
    assert (r.smsc_id, r.state, r.error, r.done_at) == ("9", "REJECTD", "0B", T0.replace(second=5))
    assert parse_receipt(receipt_sm("id:9 stat:WEIRD")).state == "UNKNOWN"


def test_receipt_or_mo() -> None:
    assert is_receipt(receipt_sm())
    assert not is_receipt(pdu.ShortMessage("1", "2", b"hello"))
    assert is_receipt(pdu.ShortMessage("1", "2", b"", tlvs={pdu.TLV_RECEIPTED_MESSAGE_ID: b"1\x00"}))


def mo_parts(text: str, reference: int) -> list[pdu.ShortMessage]:
    encoded = gsm.encode(text, reference=reference)
    return [pdu.ShortMessage("12505550123", "IVR", p, encoded.data_coding, encoded.esm_class, source_ton=1)
            for p in encoded.parts]


def test_reassembly_out_of_order_and_interleaved() -> None:
    r = Reassembler()
    a, b = mo_parts("A" * 300, 1), mo_parts("你" * 100, 2)
    assert r.add(a[1], T0) is None and r.add(b[1], T0) is None
    assert r.pending == 2
    other = r.add(b[0], T0)
    assert other is not None and other.text == "你" * 100
    whole = r.add(a[0], T0)
    assert whole is not None and whole.text == "A" * 300 and whole.source == "+12505550123"
    assert r.pending == 0


def test_reassembly_by_sar() -> None:
    r = Reassembler()
    parts = [pdu.ShortMessage("1", "2", t.encode(), tlvs=pdu.sar_tlvs(9, 2, i + 1))
             for i, t in enumerate(["ab", "cd"])]
    assert r.add(parts[1], T0) is None
    whole = r.add(parts[0], T0)
    assert whole is not None and whole.text == "abcd"


def test_stale_partial_handed_on() -> None:
    r = Reassembler(dt.timedelta(minutes=1))
    r.add(mo_parts("B" * 400, 3)[0], T0)
    assert r.expire(T0 + dt.timedelta(seconds=30)) == []
    (late,) = r.expire(T0 + dt.timedelta(minutes=2))
    assert late.text == "B" * 153 and r.pending == 0


def test_address() -> None:
    assert address("12505550123", 1) == "+12505550123"
    assert address("IVRGATE", 5) == "IVRGATE" and address("5551234", 0) == "5551234"
