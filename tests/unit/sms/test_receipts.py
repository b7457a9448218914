"""sms.receipts: receipt parsing (TLVs and text form) and MO reassembly."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms import gsm, pdu
from sms.receipts import (
    ID_FORMS,
    Reassembler,
    address,
    is_receipt,
    merge_state,
    normalise_smsc_id,
    parse_receipt,
    smsc_id_candidates,
    state_precedence,
)

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


# --- SMSC message ID forms -----------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "normal"), [
    ("0000012345", "12345"), ("12345", "12345"), ("00ab1F", "AB1F"), (" 0x1 ", "0X1"), ("0000", "0"),
    ("a1b2c3d4-e5", "A1B2C3D4-E5"), ("abc\x00", "ABC"), ("", ""), ("k9zq01", "K9ZQ01"),
])
def test_normalise_smsc_id(raw: str, normal: str) -> None:
    assert normalise_smsc_id(raw) == normal


@given(st.integers(0, 2**64), st.integers(0, 6), st.booleans(), st.sampled_from(ID_FORMS))
def test_every_form_of_an_id_finds_its_response(number: int, zeros: int, lower: bool, form: str) -> None:
    """submit_sm_resp in hex or decimal, the receipt in either base, padded or not, any case."""
    for response, receipt, needs in (
        (format(number, "X"), format(number, "x" if lower else "X"), {"auto", "same"}),
        (str(number), str(number), {"auto", "same"}),
        (format(number, "X"), str(number), {"auto", "hex_to_decimal"}),
        (str(number), format(number, "x" if lower else "X"), {"auto", "decimal_to_hex"}),
    ):
        padded_response = "0" * zeros + response
        candidates = smsc_id_candidates(receipt, form)
        if form in needs:
            assert normalise_smsc_id(padded_response) in candidates
        assert candidates[0] == normalise_smsc_id(receipt) or form not in ("auto", "same")


def test_candidates_put_the_configured_form_first() -> None:
    assert smsc_id_candidates("6699", "hex_to_decimal") == ("1A2B", "6699")
    assert smsc_id_candidates("1a2b", "decimal_to_hex") == ("6699", "1A2B")
    assert smsc_id_candidates("6699", "auto") == ("6699", "1A2B", "26265")
    assert smsc_id_candidates("00x7", "auto") == ("00X7",)
    assert smsc_id_candidates("6699", "same") == ("6699",)
    with pytest.raises(ValueError, match="receipt ID form"):
        smsc_id_candidates("1", "octal")


def test_text_id_read_by_the_configured_form_tlv_by_auto() -> None:
    text = TEXT.replace("id:0123456789", "id:6699")
    assert parse_receipt(receipt_sm(text), "hex_to_decimal").match_ids == ("1A2B", "6699")
    tlv = parse_receipt(receipt_sm(text, rid=b"00001a2b\x00"), "hex_to_decimal")
    assert tlv.smsc_id == "00001a2b" and tlv.match_ids[0] == "1A2B"  # the TLV is preferred, read as is first


def test_precedence_order_is_total() -> None:
    ranks = [state_precedence(s) for s in ("", "ENROUTE", "ACCEPTD", "DELIVRD", "EXPIRED", "DELETED",
                                           "UNKNOWN", "UNDELIV", "REJECTD")]
    assert ranks == sorted(set(ranks))
    assert merge_state("EXPIRED", "UNDELIV") == merge_state("UNDELIV", "EXPIRED") == "UNDELIV"
    assert merge_state("UNDELIV", "DELIVRD") == "UNDELIV"
