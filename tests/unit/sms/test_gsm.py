"""sms.gsm: alphabet choice, septet counting, splitting and the round trip (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sms import gsm
from sms.errors import TooManyParts

GSM_CHARS = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCZÄÖÑÜ§¿azäöñüà^{}\\[~]|€\f"


def round_trip(encoded: gsm.Encoded) -> str:
    texts = []
    for part in encoded.parts:
        text, concat = gsm.decode(part, encoded.data_coding, encoded.esm_class)
        assert (concat is None) == (len(encoded.parts) == 1)
        texts.append(text)
    return gsm.join_parts(texts)


@given(st.text(alphabet=GSM_CHARS, max_size=900))
@settings(max_examples=300)
def test_gsm7_round_trip_and_size(text: str) -> None:
    encoded = gsm.encode(text, reference=200, max_parts=10)
    assert encoded.data_coding == gsm.GSM7
    assert round_trip(encoded) == text
    for part in encoded.parts:
        assert gsm.air_octets(part, encoded.data_coding, encoded.esm_class) <= gsm.AIR_OCTETS
        assert part[-1:] != b"\x1b"
    assert len(encoded.parts) == gsm.count_parts(text, 10) == encoded.segments
    payload = gsm.encode(text, reference=200, max_parts=10, use_payload=True)
    assert len(payload.parts) == 1 and payload.segments == encoded.segments


@given(st.text(min_size=1, max_size=500).filter(lambda t: not gsm.is_gsm7(t)))
@settings(max_examples=300)
def test_ucs2_round_trip_and_size(text: str) -> None:
    encoded = gsm.encode(text, reference=3, max_parts=20)
    assert encoded.data_coding == gsm.UCS2
    assert round_trip(encoded) == text
    for part in encoded.parts:
        assert len(part) <= gsm.AIR_OCTETS
        body = part[6:] if encoded.esm_class else part
        assert not 0xD800 <= int.from_bytes(body[-2:], "big") <= 0xDBFF  # no pair split
    assert encoded.text_length == len(text.encode("utf-16-be")) // 2


@given(st.text(alphabet=GSM_CHARS, max_size=600))
def test_packed_gsm7_round_trip(text: str) -> None:
    encoded = gsm.encode(text, reference=1, max_parts=10, packed=True)
    texts = [gsm.decode(p, encoded.data_coding, encoded.esm_class, packed=True)[0] for p in encoded.parts]
    assert all(len(p) <= gsm.AIR_OCTETS for p in encoded.parts)
    # 7 spare bits carry a CR (not a stray '@'), which decoding drops; only a text that itself ends with
    # a CR on an octet boundary is ambiguous (23.038)
    joined = "".join(texts)
    assert joined == text or joined.rstrip("\r") == text.rstrip("\r")


@pytest.mark.parametrize(("text", "coding", "length", "parts"), [
    ("", gsm.GSM7, 0, 1),
    ("a" * 160, gsm.GSM7, 160, 1),
    ("a" * 161, gsm.GSM7, 161, 2),
    ("€" * 80, gsm.GSM7, 160, 1),
    ("€" * 81, gsm.GSM7, 162, 2),
    ("Ñandu, él, über", gsm.GSM7, 15, 1),
    ("canción", gsm.UCS2, 7, 1),
    ("á" * 70, gsm.UCS2, 70, 1),
    ("á" * 71, gsm.UCS2, 71, 2),
    ("你" * 134, gsm.UCS2, 134, 2),
    ("😀" * 35, gsm.UCS2, 70, 1),
])
def test_alphabet_and_counts(text: str, coding: int, length: int, parts: int) -> None:
    encoded = gsm.encode(text, reference=0)
    assert (encoded.data_coding, encoded.text_length, len(encoded.parts)) == (coding, length, parts)
    assert gsm.count_parts(text) == parts
    assert encoded.esm_class == (gsm.UDHI if parts > 1 else 0)


def test_escape_never_split() -> None:
    encoded = gsm.encode("a" * 152 + "{" + "b" * 10, reference=5)
    assert encoded.parts[0] == gsm.udh_concat(5, 2, 1) + b"a" * 152
    assert encoded.parts[1] == gsm.udh_concat(5, 2, 2) + b"\x1b\x28" + b"b" * 10


def test_surrogate_pair_never_split() -> None:
    encoded = gsm.encode("x" * 66 + "😀" + "y" * 10, reference=5)
    first = encoded.parts[0][6:]
    assert len(first) == 132 and first.decode("utf-16-be") == "x" * 66


def test_reference_is_eight_bit() -> None:
    assert gsm.encode("a" * 200, reference=0x1FF).parts[0][:6] == bytes.fromhex("050003ff0201")


def test_part_cap() -> None:
    with pytest.raises(TooManyParts) as raised:
        gsm.encode("a" * (153 * 6 + 1), reference=1)
    assert raised.value.code == 511 and raised.value.status_text == "INVALID TXT"
    assert gsm.count_parts("a" * 153 * 6) == 6
    with pytest.raises(TooManyParts):
        gsm.count_parts("你" * 71, max_parts=1)


def test_payload_is_one_part_counted_as_many() -> None:
    encoded = gsm.encode("a" * 400, reference=1, use_payload=True)
    assert encoded.parts == (b"a" * 400,) and encoded.esm_class == 0
    with pytest.raises(TooManyParts):
        gsm.encode("a" * 400, reference=1, use_payload=True, max_parts=2)


def test_decode_other_codings_and_udh_forms() -> None:
    assert gsm.decode("café".encode("latin-1"), 0x03, 0) == ("café", None)
    assert gsm.decode(b"\x1b\x41", 0x00, 0)[0] == "A"  # unknown extension: the basic character
    sixteen_bit = bytes.fromhex("06080401020302") + "hé".encode("utf-16-be")
    assert gsm.decode(sixteen_bit, 0x08, 0x40) == ("hé", gsm.Concat(0x0102, 3, 2))
    assert gsm.decode(b"\x48\x49", 0xF0, 0)[0] == "HI"
    assert gsm.decode("ok".encode("utf-16-be"), 0x18, 0)[0] == "ok"


def test_packing_known_vector() -> None:
    # "hellohello" packed, the classic 23.038 example
    assert gsm.pack_septets(b"hellohello").hex() == "e8329bfd4697d9ec37"
    assert gsm.unpack_septets(bytes.fromhex("e8329bfd4697d9ec37"), count=10) == b"hellohello"
