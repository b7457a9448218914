"""Operator settings, pure parts: the relative validity period, GSM-7 packing at the part boundaries, the
sender address's TON/NPI, and the settings' validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.core.settings import SmsSettings
from sms import gsm, pdu
from sms.smpp import SmppSettings, source_address

GSM_BASIC = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
             "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_ALL = GSM_BASIC + "^{}\\[~]|€\f"


# --- validity_period (SMPP 3.4 §7.1.1, relative) -------------------------------------------------------

@pytest.mark.parametrize(("value", "smpp"), [
    ("", ""), ("48h", "000002000000000R"), ("2d", "000002000000000R"), ("90m", "000000013000000R"),
    ("3600", "000000010000000R"), ("3661s", "000000010101000R"), ("99d", "000099000000000R"),
    ("000001120000000R", "000001120000000R"), (" 1 h ", "000000010000000R"),
])
def test_relative_validity(value: str, smpp: str) -> None:
    assert pdu.relative_validity(value) == smpp


@pytest.mark.parametrize("value", ["0", "100d", "-1h", "1w", "2611241200000+04", "001300000000000R",
                                   "00000200000000AR", "soon"])
def test_bad_validity_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="validity period"):
        pdu.relative_validity(value)


@given(st.integers(1, 99 * 86400 + 86399))
def test_validity_is_the_same_duration(seconds: int) -> None:
    text = pdu.relative_validity(str(seconds))
    assert len(text) == 16 and text.endswith("000R") and text[:4] == "0000"
    days, hours, minutes, secs = (int(text[i:i + 2]) for i in (4, 6, 8, 10))
    assert days * 86400 + hours * 3600 + minutes * 60 + secs == seconds
    assert hours < 24 and minutes < 60 and secs < 60


# --- packed GSM-7 (an independent bit-string packer as the reference) ---------------------------------

def reference_pack(septets: bytes, fill: int) -> bytes:
    """23.038 packing written the slow way: each septet's bits, least significant first, after `fill`
    zero bits; the last octet's spare bits are zero, or a CR when they are exactly 7."""
    bits = "0" * fill + "".join(format(s, "07b")[::-1] for s in septets)
    if len(bits) % 8 == 1:
        bits += format(0x0D, "07b")[::-1]
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i:i + 8][::-1], 2) for i in range(0, len(bits), 8))


def septets_of(text: str) -> bytes:
    encoded = gsm.encode(text, reference=0, max_parts=1)
    return encoded.parts[0]


@given(st.text(alphabet=GSM_ALL, max_size=160))
def test_single_part_packing_matches_the_reference(text: str) -> None:
    if len(septets_of(text)) > 160:
        return
    (packed,) = gsm.encode(text, reference=0, packed=True).parts
    assert packed == reference_pack(septets_of(text), 0)
    assert len(packed) <= gsm.AIR_OCTETS


@given(st.text(alphabet=GSM_ALL, min_size=1, max_size=900))
def test_concatenated_packing_has_the_fill_bit_and_fits(text: str) -> None:
    plain = gsm.encode(text, reference=7, max_parts=10)
    packed = gsm.encode(text, reference=7, max_parts=10, packed=True)
    assert packed.esm_class == plain.esm_class and len(packed.parts) == len(plain.parts)
    for raw, part in zip(plain.parts, packed.parts, strict=True):
        udh = len(raw) and (raw[0] + 1 if plain.esm_class & gsm.UDHI else 0)
        assert part[:udh] == raw[:udh]
        assert part[udh:] == reference_pack(raw[udh:], 1 if udh == 6 else 0)
        assert len(part) <= gsm.AIR_OCTETS


@pytest.mark.parametrize(("text", "octets"), [
    ("a" * 160, [140]),  # 160 septets: 1,120 bits, 140 octets exactly
    ("a" * 159, [140]),  # 1,113 bits: 7 spare bits carry a CR, not an '@'
    ("a" * 161, [6 + 134, 6 + 8]),  # 153 septets after the 6-octet UDH and 1 fill bit: 140 octets
    ("a" * 306, [140, 140]),
    ("€" * 80, [140]),  # escapes count two septets each
    ("a" * 152 + "€" + "a" * 10, [6 + 134, 6 + 11]),  # the escape pair is not split: it opens part 2
])
def test_part_boundaries(text: str, octets: list[int]) -> None:
    packed = gsm.encode(text, reference=1, max_parts=10, packed=True)
    assert [len(p) for p in packed.parts] == octets


def test_seven_spare_bits_hold_a_cr() -> None:
    (packed,) = gsm.encode("a" * 7, reference=0, packed=True).parts
    assert packed == reference_pack(b"a" * 7, 0) and len(packed) == 7
    assert gsm.unpack_septets(packed) == b"a" * 7 + b"\r"
    assert gsm.decode(packed, gsm.GSM7, 0, packed=True)[0] == "a" * 7


def test_known_vector() -> None:
    (packed,) = gsm.encode("hellohello", reference=0, packed=True).parts
    assert packed.hex() == "e8329bfd4697d9ec37"


# --- addresses and settings ----------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("+12505550100", ("12505550100", 1, 1)),
    ("12505550100", ("12505550100", 1, 1)),
    ("+2901234", ("2901234", 1, 1)),  # a short international number keeps its TON 1
    ("72345", ("72345", 3, 0)),
    ("123", ("123", 3, 0)),
    ("12345678", ("12345678", 3, 0)),
    ("ACME", ("ACME", 5, 0)),
    ("", ("", 0, 0)),  # the SMSC's default sender, never an empty alphanumeric address
])
def test_source_address(value: str, expected: tuple[str, int, int]) -> None:
    assert source_address(value, SmppSettings()) == expected


def test_short_code_ton_is_a_setting() -> None:
    assert source_address("72345", SmppSettings(short_code_ton=0, short_code_npi=1)) == ("72345", 0, 1)


@pytest.mark.parametrize(("settings", "message"), [
    ({"validity_period": "1 week"}, "validity period"),
    ({"gsm_data_coding": 3}, "gsm_data_coding"),
    ({"response_timeout_s": 60.0, "stalled_submit_s": 30.0}, "stalled_submit_s"),
    ({"receipt_id_form": "octal"}, "receipt_id_form"),
])
def test_bad_smpp_settings(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SmppSettings(**settings)  # type: ignore[arg-type]


def test_default_sender_must_be_a_sender() -> None:
    assert SmsSettings(default_source="ACME").default_source == "ACME"
    assert SmsSettings(default_source="72345").default_source == "72345"
    for bad in ("Twelve chars", "+", "Shop;DROP"):
        with pytest.raises(ValueError, match="default_source"):
            SmsSettings(default_source=bad)


def test_defaults() -> None:
    s = SmppSettings()
    assert (s.response_timeout_s, s.stalled_submit_s, s.gsm_data_coding, s.gsm_packed, s.validity_period) == (
        30.0, 300.0, 0x00, False, "")
