"""SMS text encoding (pure): GSM 03.38 default alphabet or UCS-2, split into concatenated parts.

GSM-7 text is counted in septets (an extension-table character costs two: the escape and the character,
and the pair is never split across parts); anything the default alphabet and its extension table lack is
sent as UCS-2 (UTF-16 big-endian, surrogate pairs never split). One part holds 160 septets or 70 UCS-2
units; a concatenated part 153 septets or 67 units after a 6-octet UDH with an 8-bit reference.

GSM-7 short_message bytes are unpacked (one septet per octet), the SMPP convention the SMSC packs for
the air interface; `packed=True` produces packed septets for SMSCs that want them (and enforce 140
octets on short_message): `pack_gsm`, with the fill bits that align the septets after a UDH, and a
carriage return in the last 7 spare bits, so an SMSC that counts septets from octets reads no extra '@'.
Either way a part fits the 140 octets of one SMS on the air (`air_octets`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sms.errors import TooManyParts

GSM7 = 0x00
UCS2 = 0x08
LATIN1 = 0x03
UDHI = 0x40
ESCAPE = 0x1B
CR = 0x0D
"""Padding of 7 spare bits at the end of packed septets (3GPP TS 23.038 6.1.2.3.1), instead of '@'."""

SINGLE_SEPTETS = 160
PART_SEPTETS = 153
SINGLE_UNITS = 70
PART_UNITS = 67
AIR_OCTETS = 140
REFERENCE_BITS = (8, 16)
"""Concatenation references: 8-bit (IEI 0x00, a 6-octet UDH) or 16-bit (IEI 0x08, 7 octets)."""
PART_SEPTETS_16 = 152
"""Septets of a part behind the 7-octet UDH of a 16-bit reference (8 septets of UDH and fill)."""
PART_UNITS_16 = 66

_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D, "]": 0x3E,
              "|": 0x40, "€": 0x65}
_ENCODE_BASIC = {ch: i for i, ch in enumerate(_BASIC) if i != ESCAPE}
_DECODE_EXTENSION = {v: k for k, v in _EXTENSION.items()}


@dataclass(frozen=True)
class Concat:
    """Where one part sits in a concatenated message (from a UDH or the SAR TLVs)."""

    reference: int
    total: int
    seq: int
    """1-based position of the part."""


@dataclass(frozen=True)
class Encoded:
    """A text ready for submit_sm: every part is a complete short_message (UDH included when esm_class
    has UDHI), or, with message_payload, one part holding the whole text."""

    data_coding: int
    parts: tuple[bytes, ...]
    esm_class: int
    text_length: int
    """Septets (GSM-7) or UTF-16 code units (UCS-2)."""
    segments: int
    """The SMSs the text becomes (count_parts): len(parts), or what the SMSC splits a payload into."""


def is_gsm7(text: str) -> bool:
    """Whether every character of `text` is in the GSM 03.38 default alphabet or its extension table."""
    return all(ch in _ENCODE_BASIC or ch in _EXTENSION for ch in text)


def _septet_groups(text: str) -> list[bytes]:
    """One group per character: one septet, or the escape and the extension septet together."""
    return [bytes((ESCAPE, _EXTENSION[ch])) if ch in _EXTENSION else bytes((_ENCODE_BASIC[ch],))
            for ch in text]


def _ucs2_groups(text: str) -> list[bytes]:
    """One group per character: two octets, or four for a character outside the BMP (a surrogate pair)."""
    return [ch.encode("utf-16-be") for ch in text]


def _chunks(groups: list[bytes], limit: int) -> list[bytes]:
    """Pack whole groups into chunks of at most `limit` octets, so no group is split across chunks."""
    chunks: list[bytes] = []
    current = bytearray()
    for group in groups:
        if len(current) + len(group) > limit:
            chunks.append(bytes(current))
            current = bytearray()
        current += group
    chunks.append(bytes(current))
    return chunks


def _layout(text: str, reference_bits: int = 8) -> tuple[int, list[bytes], int, int, int]:
    """(data_coding, groups, length in units, octets of a single part, octets of a concatenated part)."""
    if reference_bits not in REFERENCE_BITS:
        raise ValueError(f"reference_bits must be 8 or 16, not {reference_bits}")
    wide = reference_bits == 16
    if is_gsm7(text):
        groups = _septet_groups(text)
        return GSM7, groups, sum(map(len, groups)), SINGLE_SEPTETS, PART_SEPTETS_16 if wide else PART_SEPTETS
    groups = _ucs2_groups(text)
    units = PART_UNITS_16 if wide else PART_UNITS
    return UCS2, groups, sum(map(len, groups)) // 2, SINGLE_UNITS * 2, units * 2


def _payload_chunks(text: str, reference_bits: int = 8) -> tuple[int, list[bytes], int]:
    data_coding, groups, length, single, multi = _layout(text, reference_bits)
    payload = b"".join(groups)
    if len(payload) <= single:
        return data_coding, [payload], length
    return data_coding, _chunks(groups, multi), length


def count_parts(text: str, max_parts: int = 6, reference_bits: int = 8) -> int:
    """How many SMS parts `text` takes (for pricing at submission); raises TooManyParts past `max_parts`.
    The one cap rule: submission (api.core.service) and sending (`encode`) both apply it. A 16-bit reference
    leaves a septet (GSM-7) or a character (UCS-2) less per part."""
    _, chunks, _ = _payload_chunks(text, reference_bits)
    return _capped(len(chunks), max_parts)


def _capped(parts: int, max_parts: int) -> int:
    if parts > max_parts:
        raise TooManyParts(f"the text needs {parts} SMS parts, at most {max_parts} are allowed")
    return parts


def udh_concat(reference: int, total: int, seq: int, reference_bits: int = 8) -> bytes:
    """The user data header of a concatenated part: 6 octets with an 8-bit reference (IEI 0x00), 7 with
    a 16-bit one (IEI 0x08)."""
    if reference_bits == 16:
        return bytes((0x06, 0x08, 0x04, (reference >> 8) & 0xFF, reference & 0xFF, total, seq))
    return bytes((0x05, 0x00, 0x03, reference & 0xFF, total, seq))


def encode(text: str, *, reference: int, max_parts: int = 6, use_payload: bool = False,
           packed: bool = False, reference_bits: int = 8) -> Encoded:
    """Encode `text` for submit_sm: the alphabet, and the parts with a concatenation UDH (`reference`,
    8 or 16 bits of it) when it does not fit one SMS. With `use_payload` the whole text is one part for
    the message_payload TLV (the SMSC splits it); the part cap still counts the SMSs it will become."""
    data_coding, chunks, length = _payload_chunks(text, reference_bits)
    _capped(len(chunks), max_parts)
    pack = packed and data_coding == GSM7
    if use_payload:
        whole = b"".join(chunks)
        return Encoded(data_coding, (pack_gsm(whole) if pack else whole,), 0, length, len(chunks))
    if len(chunks) == 1:
        return Encoded(data_coding, (pack_gsm(chunks[0]) if pack else chunks[0],), 0, length, 1)
    total = len(chunks)
    parts = []
    for seq, chunk in enumerate(chunks, start=1):
        udh = udh_concat(reference, total, seq, reference_bits)
        parts.append(udh + (pack_gsm(chunk, len(udh)) if pack else chunk))
    return Encoded(data_coding, tuple(parts), UDHI, length, total)


def _fill_bits(udh_octets: int) -> int:
    """Bits that align packed septets after a UDH of `udh_octets` octets to a septet boundary."""
    return (7 - (udh_octets * 8) % 7) % 7


def pack_gsm(septets: bytes, udh_octets: int = 0) -> bytes:
    """Septets packed as a short_message after a UDH of `udh_octets` octets (the UDH itself not
    included): fill bits to the next septet boundary first, and, when the last octet would end in 7
    spare bits (which read as one more septet, '@', to an SMSC that counts septets from octets), a CR in
    them. The octets: ceil((fill + 7 × septets) / 8); 160 septets are 140, 153 after a 6-octet UDH 134."""
    fill = _fill_bits(udh_octets)
    if (fill + 7 * len(septets)) % 8 == 1:
        return pack_septets(septets + bytes((CR,)), fill)  # the CR fills exactly the 7 spare bits
    return pack_septets(septets, fill)


def _unpack_gsm(octets: bytes, udh_octets: int) -> bytes:
    """The inverse of pack_gsm: a CR that ends exactly on the last octet's boundary is its padding
    (a text that really ends with one there loses it: 23.038 accepts that ambiguity)."""
    fill = _fill_bits(udh_octets)
    septets = unpack_septets(octets, fill)
    if septets.endswith(bytes((CR,))) and (fill + 7 * len(septets)) % 8 == 0:
        return septets[:-1]
    return septets


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack 7-bit values into octets (GSM 03.38 packing), after `fill_bits` zero bits."""
    value, bits, out = 0, fill_bits, bytearray()
    for septet in septets:
        value |= (septet & 0x7F) << bits
        bits += 7
        while bits >= 8:
            out.append(value & 0xFF)
            value >>= 8
            bits -= 8
    if bits:
        out.append(value & 0xFF)
    return bytes(out)


def unpack_septets(octets: bytes, fill_bits: int = 0, count: int | None = None) -> bytes:
    """The inverse of pack_septets; `count` drops a trailing zero septet that padding looks like."""
    total = (len(octets) * 8 - fill_bits) // 7 if count is None else count
    value = int.from_bytes(octets, "little") >> fill_bits
    return bytes((value >> (7 * i)) & 0x7F for i in range(total))


def air_octets(short_message: bytes, data_coding: int, esm_class: int, packed: bool = False) -> int:
    """Octets a part takes on the air interface (TP-UD): GSM-7 septets packed after the UDH."""
    if data_coding != GSM7 or packed:
        return len(short_message)
    udh_len = short_message[0] + 1 if esm_class & UDHI and short_message else 0
    septets = len(short_message) - udh_len
    return udh_len + (_fill_bits(udh_len) + septets * 7 + 7) // 8


def decode_gsm7(septets: bytes) -> str:
    """Unpacked GSM-7 to text; an escape before an unknown code reads as the basic character (23.038)."""
    out: list[str] = []
    escaped = False
    for septet in septets:
        septet &= 0x7F
        if escaped:
            out.append(_DECODE_EXTENSION.get(septet, _BASIC[septet] if septet != ESCAPE else " "))
            escaped = False
        elif septet == ESCAPE:
            escaped = True
        else:
            out.append(_BASIC[septet])
    return "".join(out)


def _alphabet(data_coding: int) -> str:
    """'gsm', 'ucs2' or 'latin1' by SMPP data_coding and the GSM 03.38 coding groups."""
    if data_coding in (0x00, 0x01):
        return "gsm"
    if data_coding == UCS2:
        return "ucs2"
    if data_coding & 0xF0 == 0xF0:
        return "latin1" if data_coding & 0x04 else "gsm"
    if data_coding & 0xC0 == 0x00 and data_coding & 0x30:
        return {0: "gsm", 2: "ucs2"}.get((data_coding >> 2) & 0x03, "latin1")
    return "latin1"


def parse_udh(udh: bytes) -> Concat | None:
    """The concatenation information elements (8-bit 0x00 or 16-bit 0x08 reference) of a UDH, if any."""
    i = 1
    while i + 1 < len(udh):
        iei, length = udh[i], udh[i + 1]
        value = udh[i + 2 : i + 2 + length]
        if iei == 0x00 and length == 3 and len(value) == 3:
            return Concat(value[0], value[1], value[2])
        if iei == 0x08 and length == 4 and len(value) == 4:
            return Concat(int.from_bytes(value[:2], "big"), value[2], value[3])
        i += 2 + length
    return None


def decode(short_message: bytes, data_coding: int, esm_class: int,
           packed: bool = False) -> tuple[str, Concat | None]:
    """Text and concatenation information of one short_message (UDH stripped when esm_class has UDHI).
    UCS-2 keeps lone surrogates (a pair split by another sender) for `join_parts` to pair up."""
    concat = None
    body = short_message
    udh_len = 0
    if esm_class & UDHI and short_message:
        udh_len = short_message[0] + 1
        concat = parse_udh(short_message[:udh_len])
        body = short_message[udh_len:]
    alphabet = _alphabet(data_coding)
    if alphabet == "gsm":
        septets = _unpack_gsm(body, udh_len) if packed else body
        return decode_gsm7(septets), concat
    if alphabet == "ucs2":
        return body[: len(body) // 2 * 2].decode("utf-16-be", "surrogatepass"), concat
    return body.decode("latin-1"), concat


def join_parts(texts: list[str]) -> str:
    """Join decoded parts in order, pairing surrogates that another sender split across parts."""
    joined = "".join(texts)
    return joined.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")
