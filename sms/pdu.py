"""SMPP 3.4 PDUs (pure): framing, the header, and the bodies an ESME sends and reads.

Only bytes in, bytes out: the asyncio session (`sms.link`) owns the socket and the sequence numbers.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from sms.errors import PduError

HEADER = struct.Struct(">IIII")
MAX_PDU_OCTETS = 64 * 1024 + 1024
"""Longest PDU accepted from the SMSC: a full message_payload plus the fixed fields."""

GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
BIND_TRANSCEIVER = 0x00000009
ENQUIRE_LINK = 0x00000015
RESPONSE = 0x80000000

ESME_ROK = 0x00
ESME_RINVMSGLEN = 0x01
ESME_RINVCMDID = 0x03
ESME_RALYBND = 0x05
ESME_RSYSERR = 0x08
ESME_RBINDFAIL = 0x0D
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
ESME_RX_T_APPN = 0x64

STATUS_NAMES = {
    0x00: "ESME_ROK", 0x01: "ESME_RINVMSGLEN", 0x02: "ESME_RINVCMDLEN", 0x03: "ESME_RINVCMDID",
    0x04: "ESME_RINVBNDSTS", 0x05: "ESME_RALYBND", 0x08: "ESME_RSYSERR", 0x0A: "ESME_RINVSRCADR",
    0x0B: "ESME_RINVDSTADR", 0x0C: "ESME_RINVMSGID", 0x0D: "ESME_RBINDFAIL", 0x0E: "ESME_RINVPASWD",
    0x0F: "ESME_RINVSYSID", 0x14: "ESME_RMSGQFUL", 0x45: "ESME_RSUBMITFAIL", 0x48: "ESME_RINVSRCTON",
    0x49: "ESME_RINVSRCNPI", 0x50: "ESME_RINVDSTTON", 0x51: "ESME_RINVDSTNPI", 0x58: "ESME_RTHROTTLED",
    0x61: "ESME_RINVSCHED", 0x62: "ESME_RINVEXPIRY", 0x64: "ESME_RX_T_APPN", 0x65: "ESME_RX_P_APPN",
    0x66: "ESME_RX_R_APPN", 0xFF: "ESME_RUNKNOWNERR",
}

TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_SAR_MSG_REF_NUM = 0x020C
TLV_SAR_TOTAL_SEGMENTS = 0x020E
TLV_SAR_SEGMENT_SEQNUM = 0x020F
TLV_NETWORK_ERROR_CODE = 0x0423
TLV_MESSAGE_PAYLOAD = 0x0424
TLV_MESSAGE_STATE = 0x0427

INTERFACE_VERSION = 0x34


MAX_VALIDITY_DAYS = 99
"""The longest relative validity period written in days (the DD field); months are not used."""
_DURATION = re.compile(r"(\d+)\s*([smhd]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def relative_validity(value: str) -> str:
    """A validity period as SMPP 3.4 §7.1.1 writes a relative time, `YYMMDDhhmmss000R`.

    `value` is '' (none: the SMSC's default), a duration in seconds, minutes, hours or days (`3600`,
    `90m`, `48h`, `2d`), or a relative time string already (16 characters ending in R, checked).
    Raises ValueError for anything else, for absolute times, and beyond 99 days."""
    text = value.strip()
    if not text:
        return ""
    if len(text) == 16 and text.endswith("R"):
        if not text[:15].isdigit() or text[13:15] != "00" or int(text[2:4]) > 11 or int(text[6:8]) > 23 \
                or int(text[8:10]) > 59 or int(text[10:12]) > 59:
            raise ValueError(f"validity period {value!r} is not an SMPP relative time YYMMDDhhmmsst00R")
        return text
    match = _DURATION.fullmatch(text.lower())
    if match is None:
        raise ValueError(f"validity period {value!r}: give a duration such as 48h, 2d, 90m or 3600 "
                         "(seconds), or an SMPP relative time YYMMDDhhmmss000R")
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    days, rest = divmod(seconds, 86400)
    if seconds < 1 or days > MAX_VALIDITY_DAYS:
        raise ValueError(f"validity period {value!r} must be 1 second to {MAX_VALIDITY_DAYS} days")
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"0000{days:02d}{hours:02d}{minutes:02d}{secs:02d}000R"


def status_name(status: int) -> str:
    """The SMPP name of a command_status, e.g. 'ESME_RTHROTTLED', or its hex value."""
    return STATUS_NAMES.get(status, f"0x{status:08X}")


@dataclass(frozen=True)
class Pdu:
    """One PDU: header fields and the raw body."""

    command_id: int
    status: int
    seq: int
    body: bytes = b""

    def to_bytes(self) -> bytes:
        return HEADER.pack(HEADER.size + len(self.body), self.command_id, self.status, self.seq) + self.body


def take_pdus(buffer: bytearray) -> Iterator[Pdu]:
    """Yield every complete PDU at the front of `buffer`, removing it; a partial tail stays."""
    offset = 0
    end = len(buffer)
    try:
        while end - offset >= HEADER.size:
            length, command_id, status, seq = HEADER.unpack_from(buffer, offset)
            if length < HEADER.size or length > MAX_PDU_OCTETS:
                raise PduError(f"command_length {length} out of range")
            if end - offset < length:
                break
            yield Pdu(command_id, status, seq, bytes(buffer[offset + HEADER.size : offset + length]))
            offset += length
    finally:
        del buffer[:offset]


def _cstring(value: str, limit: int) -> bytes:
    raw = value.encode("latin-1")
    if len(raw) >= limit:
        raise PduError(f"{value!r} is longer than {limit - 1} octets")
    return raw + b"\x00"


class _Reader:
    """Sequential reads of a PDU body; every overrun is a PduError."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.at = 0

    def cstring(self) -> str:
        end = self.body.find(b"\x00", self.at)
        if end < 0:
            raise PduError("unterminated C-Octet String")
        value = self.body[self.at : end].decode("latin-1")
        self.at = end + 1
        return value

    def u8(self) -> int:
        if self.at >= len(self.body):
            raise PduError("PDU body too short")
        self.at += 1
        return self.body[self.at - 1]

    def octets(self, count: int) -> bytes:
        if self.at + count > len(self.body):
            raise PduError("PDU body too short")
        self.at += count
        return self.body[self.at - count : self.at]

    def tlvs(self) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        while self.at < len(self.body):
            head = self.octets(4)
            tag, length = struct.unpack(">HH", head)
            found[tag] = self.octets(length)
        return found


def encode_tlvs(tlvs: dict[int, bytes]) -> bytes:
    """Optional parameters in tag order as written."""
    return b"".join(struct.pack(">HH", tag, len(value)) + value for tag, value in tlvs.items())


@dataclass(frozen=True)
class Bind:
    """bind_transmitter / bind_receiver / bind_transceiver body."""

    system_id: str
    password: str
    system_type: str = ""
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""

    def to_body(self) -> bytes:
        return b"".join((
            _cstring(self.system_id, 16), _cstring(self.password, 9), _cstring(self.system_type, 13),
            bytes((INTERFACE_VERSION, self.addr_ton, self.addr_npi)), _cstring(self.address_range, 41),
        ))

    @classmethod
    def from_body(cls, body: bytes) -> Bind:
        r = _Reader(body)
        system_id, password, system_type = r.cstring(), r.cstring(), r.cstring()
        r.u8()
        return cls(system_id, password, system_type, r.u8(), r.u8(), r.cstring())


@dataclass(frozen=True)
class ShortMessage:
    """The common body of submit_sm and deliver_sm."""

    source: str
    destination: str
    short_message: bytes = b""
    data_coding: int = 0
    esm_class: int = 0
    registered_delivery: int = 0
    source_ton: int = 0
    source_npi: int = 0
    dest_ton: int = 0
    dest_npi: int = 0
    service_type: str = ""
    protocol_id: int = 0
    priority: int = 0
    validity_period: str = ""
    tlvs: dict[int, bytes] = field(default_factory=dict)

    def to_body(self) -> bytes:
        if len(self.short_message) > 254:
            raise PduError("short_message over 254 octets: use the message_payload TLV")
        return b"".join((
            _cstring(self.service_type, 6), bytes((self.source_ton, self.source_npi)),
            _cstring(self.source, 21), bytes((self.dest_ton, self.dest_npi)), _cstring(self.destination, 21),
            bytes((self.esm_class, self.protocol_id, self.priority)), b"\x00",
            _cstring(self.validity_period, 17),
            bytes((self.registered_delivery, 0, self.data_coding, 0, len(self.short_message))),
            self.short_message, encode_tlvs(self.tlvs),
        ))

    @classmethod
    def from_body(cls, body: bytes) -> ShortMessage:
        r = _Reader(body)
        service_type = r.cstring()
        source_ton, source_npi, source = r.u8(), r.u8(), r.cstring()
        dest_ton, dest_npi, destination = r.u8(), r.u8(), r.cstring()
        esm_class, protocol_id, priority = r.u8(), r.u8(), r.u8()
        r.cstring()
        validity = r.cstring()
        registered, _, data_coding, _ = r.u8(), r.u8(), r.u8(), r.u8()
        short_message = r.octets(r.u8())
        return cls(source, destination, short_message, data_coding, esm_class, registered, source_ton,
                   source_npi, dest_ton, dest_npi, service_type, protocol_id, priority, validity, r.tlvs())

    @property
    def text_octets(self) -> bytes:
        """short_message, or the message_payload TLV when short_message is empty."""
        return self.short_message or self.tlvs.get(TLV_MESSAGE_PAYLOAD, b"")


def message_id_body(message_id: str) -> bytes:
    """Body of submit_sm_resp / deliver_sm_resp."""
    return _cstring(message_id, 66)


def read_message_id(body: bytes) -> str:
    """The message_id of a submit_sm_resp; an empty body (error responses may omit it) reads as ''."""
    return _Reader(body).cstring() if body else ""


def read_system_id(body: bytes) -> str:
    """The system_id of a bind_*_resp."""
    return _Reader(body).cstring() if body else ""


def sar_tlvs(reference: int, total: int, seq: int) -> dict[int, bytes]:
    """The SAR optional parameters of one part of a concatenated message."""
    return {TLV_SAR_MSG_REF_NUM: struct.pack(">H", reference & 0xFFFF),
            TLV_SAR_TOTAL_SEGMENTS: bytes((total,)), TLV_SAR_SEGMENT_SEQNUM: bytes((seq,))}
