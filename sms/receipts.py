"""What a deliver_sm carries (pure): a delivery receipt, or a part of an incoming (MO) message.

Receipts are read from the TLVs (receipted_message_id, message_state, network_error_code) and from the
text form `id:... sub:... dlvrd:... submit date:... done date:... stat:... err:... text:...`; the TLVs win
where both exist. MO parts, concatenated by UDH or by the SAR TLVs, are joined by `Reassembler`.

Two pure rules live here because every receipt passes through them:
- **precedence** (`merge_state`): the state a part keeps when several receipts arrive for it, the stronger
  one by `STATE_PRECEDENCE`, so the outcome does not depend on the order receipts arrive in;
- **SMSC message ID forms** (`normalise_smsc_id`, `smsc_id_candidates`): the ID of a submit_sm_resp and
  the ID a receipt names may differ in case, in leading zeros, or in base (hex in one, decimal in the
  other); both sides are reduced to one form before they are compared.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field

from sms import gsm, pdu

log = logging.getLogger(__name__)

RECEIPT_STATES = ("DELIVRD", "UNDELIV", "REJECTD", "EXPIRED", "ENROUTE", "ACCEPTD", "DELETED", "UNKNOWN")
_MESSAGE_STATE = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD",
                  7: "UNKNOWN", 8: "REJECTD"}
_STATE_ALIASES = {"DELIVERED": "DELIVRD", "UNDELIVERABLE": "UNDELIV", "REJECTED": "REJECTD",
                  "ACCEPTED": "ACCEPTD", "ENROUTE": "ENROUTE", "EXPIRED": "EXPIRED", "DELETED": "DELETED"}
FAILED_STATES = frozenset({"UNDELIV", "REJECTD", "DELETED", "UNKNOWN"})
"""Final states other than delivery and expiry: the message is undeliverable."""
STATE_PRECEDENCE = {"": 0, "ENROUTE": 1, "ACCEPTD": 2, "DELIVRD": 3, "EXPIRED": 4, "DELETED": 5, "UNKNOWN": 6,
                    "UNDELIV": 7, "REJECTD": 8}
"""A total order of receipt states: a part keeps the highest state any of its receipts reported. No
receipt < intermediate (ENROUTE, ACCEPTD) < DELIVRD < EXPIRED < the failures; among failures a fixed order
so that even the state kept (and the error text that names it) does not depend on arrival order."""
ID_FORMS = ("auto", "same", "hex_to_decimal", "decimal_to_hex")
"""How the ID in a receipt relates to the submit_sm_resp message_id (`sms.receipt_id_form`): `same` base,
`hex_to_decimal` (the response in hex, the receipt in decimal), `decimal_to_hex` (the reverse), or `auto`
(the same base first, then either conversion)."""
_HEX = frozenset("0123456789ABCDEF")
_FIELD = re.compile(r"(id|sub|dlvrd|submit date|done date|stat|err|text):", re.IGNORECASE)
_RECEIPT_ESM = 0x3C
"""esm_class bits 2-5: message type (0x04 SMSC delivery receipt, 0x08 SME ack, 0x20 intermediate)."""


@dataclass(frozen=True)
class Receipt:
    """One delivery receipt: the state of one submitted part, by the SMSC's message id."""

    smsc_id: str
    state: str
    """DELIVRD, UNDELIV, REJECTD, EXPIRED, ENROUTE, ACCEPTD, DELETED or UNKNOWN."""
    error: str
    """The SMSC's error code (the text form's `err:`, or network_error_code as hex), '000' when none."""
    done_at: dt.datetime | None
    """`done date:`, read as UTC."""
    text: str
    """The receipt as the SMSC wrote it."""
    candidates: tuple[str, ...] = ()
    """Normalised submit_sm_resp IDs this receipt may stand for, most likely first (`smsc_id_candidates`);
    empty: the normalised `smsc_id` alone."""

    @property
    def match_ids(self) -> tuple[str, ...]:
        """The normalised IDs to look the part up by, most likely first."""
        return self.candidates or (normalise_smsc_id(self.smsc_id),)


@dataclass(frozen=True)
class Incoming:
    """An MO message, concatenated parts already joined."""

    source: str
    destination: str
    text: str
    received_at: dt.datetime
    smsc_id: str | None


def state_precedence(state: str) -> int:
    """Where a receipt state stands in `STATE_PRECEDENCE` (an unknown word counts as UNKNOWN)."""
    return STATE_PRECEDENCE.get(state, STATE_PRECEDENCE["UNKNOWN"])


def merge_state(current: str, new: str) -> str:
    """The state a part keeps when a receipt saying `new` arrives after `current`: the higher one.
    Commutative, associative and idempotent, so any order of the same receipts leaves the same state."""
    return new if state_precedence(new) > state_precedence(current) else current


def normalise_smsc_id(raw: str) -> str:
    """One form of an SMSC message ID: trimmed (spaces, NULs), upper case, and, when it is all hex
    digits (decimal IDs are too), without leading zeros; '' stays ''."""
    text = raw.strip().strip("\x00").strip().upper()
    if text and all(ch in _HEX for ch in text):
        return text.lstrip("0") or "0"
    return text


def smsc_id_candidates(raw: str, form: str = "auto") -> tuple[str, ...]:
    """The normalised submit_sm_resp IDs a receipt's ID `raw` may stand for, most likely first.

    `same`: only the ID itself. `hex_to_decimal`: a decimal receipt ID of a hex response ID is
    converted first. `decimal_to_hex`: a hex receipt ID of a decimal response ID. `auto`: the ID itself,
    then the hex of it read as decimal, then the decimal of it read as hex."""
    if form not in ID_FORMS:
        raise ValueError(f"receipt ID form must be one of {', '.join(ID_FORMS)}, not {form!r}")
    same = normalise_smsc_id(raw)
    as_hex = format(int(same), "X") if same.isdigit() else None  # a decimal ID, written in hex
    as_decimal = str(int(same, 16)) if same and all(ch in _HEX for ch in same) else None
    orders: dict[str, list[str | None]] = {
        "same": [same], "hex_to_decimal": [as_hex, same], "decimal_to_hex": [as_decimal, same],
        "auto": [same, as_hex, as_decimal]}
    ordered = orders[form]
    return tuple(dict.fromkeys(c for c in ordered if c))


def is_receipt(sm: pdu.ShortMessage) -> bool:
    """Whether a deliver_sm is a delivery receipt rather than an MO message."""
    return bool(sm.esm_class & _RECEIPT_ESM) or pdu.TLV_RECEIPTED_MESSAGE_ID in sm.tlvs


def _fields(text: str) -> dict[str, str]:
    marks = list(_FIELD.finditer(text))
    found: dict[str, str] = {}
    for mark, after in zip(marks, [*marks[1:], None], strict=False):
        end = after.start() if after else len(text)
        found.setdefault(mark.group(1).lower(), text[mark.end() : end].strip())
    return found


def _receipt_time(value: str) -> dt.datetime | None:
    digits = value.strip()
    for fmt in ("%y%m%d%H%M%S", "%y%m%d%H%M"):
        try:
            return dt.datetime.strptime(digits, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    return None


def _state(value: str) -> str:
    upper = value.strip().upper()
    if upper in RECEIPT_STATES:
        return upper
    return _STATE_ALIASES.get(upper, "UNKNOWN")


def parse_receipt(sm: pdu.ShortMessage, id_form: str = "auto") -> Receipt:
    """A Receipt from a deliver_sm that `is_receipt`; missing parts read as '' / 'UNKNOWN' / None.
    The ID is the receipted_message_id TLV when present (SMPP 3.4 makes it the submit_sm_resp ID),
    else the text's `id:`; `id_form` says how the text's ID relates to the response's (`ID_FORMS`)."""
    raw = sm.text_octets
    text = raw.decode("utf-16-be", "replace") if sm.data_coding == gsm.UCS2 else raw.decode("latin-1")
    fields = _fields(text)
    smsc_id = fields.get("id", "")
    tlv_id = sm.tlvs.get(pdu.TLV_RECEIPTED_MESSAGE_ID)
    if tlv_id is not None and tlv_id.strip(b"\x00 "):
        smsc_id = tlv_id.rstrip(b"\x00").decode("latin-1")
        candidates = smsc_id_candidates(smsc_id, "auto")
    else:
        candidates = smsc_id_candidates(smsc_id, id_form)
    state = _state(fields.get("stat", ""))
    tlv_state = sm.tlvs.get(pdu.TLV_MESSAGE_STATE)
    if tlv_state:
        state = _MESSAGE_STATE.get(tlv_state[0], state)
    error = fields.get("err", "")
    network_error = sm.tlvs.get(pdu.TLV_NETWORK_ERROR_CODE)
    if not error and network_error:
        error = network_error.hex()
    done_at = _receipt_time(fields.get("done date", ""))
    return Receipt(smsc_id, state, error or "000", done_at, text, candidates)


def address(value: str, ton: int) -> str:
    """An SMPP address as ivrgate writes numbers: international (TON 1) digits get their '+'."""
    if ton == 1 and value.isdigit():
        return "+" + value
    return value


def _sar(sm: pdu.ShortMessage) -> gsm.Concat | None:
    ref = sm.tlvs.get(pdu.TLV_SAR_MSG_REF_NUM)
    total = sm.tlvs.get(pdu.TLV_SAR_TOTAL_SEGMENTS)
    seq = sm.tlvs.get(pdu.TLV_SAR_SEGMENT_SEQNUM)
    if ref is None or not total or not seq:
        return None
    return gsm.Concat(int.from_bytes(ref, "big"), total[0], seq[0])


def mo_part(sm: pdu.ShortMessage) -> tuple[str, gsm.Concat | None]:
    """The text of one MO deliver_sm and where it sits in its message (by UDH, else the SAR TLVs)."""
    text, concat = gsm.decode(sm.text_octets, sm.data_coding, sm.esm_class if sm.short_message else 0)
    return text, concat or _sar(sm)


@dataclass
class _Partial:
    first_at: dt.datetime
    total: int
    texts: dict[int, str] = field(default_factory=dict)


class Reassembler:
    """Joins the parts of MO messages. Pure: the caller passes `now`. A message whose parts stop arriving
    is handed on after `timeout` with the parts it has (an incomplete text beats a lost one)."""

    def __init__(self, timeout: dt.timedelta = dt.timedelta(minutes=5)) -> None:
        self.timeout = timeout
        self._partials: dict[tuple[str, str, int, int], _Partial] = {}

    def add(self, sm: pdu.ShortMessage, now: dt.datetime) -> Incoming | None:
        """Take one MO deliver_sm; return the whole message when this part completes it."""
        text, concat = mo_part(sm)
        source, destination = address(sm.source, sm.source_ton), address(sm.destination, sm.dest_ton)
        if concat is None or concat.total <= 1:
            return Incoming(source, destination, gsm.join_parts([text]), now, None)
        key = (source, destination, concat.reference, concat.total)
        partial = self._partials.setdefault(key, _Partial(now, concat.total))
        partial.texts[concat.seq] = text
        if len(partial.texts) < partial.total:
            return None
        del self._partials[key]
        return self._joined(key, partial, now)

    def expire(self, now: dt.datetime) -> list[Incoming]:
        """Hand on every message whose first part arrived more than `timeout` ago, as far as it got."""
        stale = [key for key, partial in self._partials.items() if now - partial.first_at > self.timeout]
        out = []
        for key in stale:
            partial = self._partials.pop(key)
            log.warning("MO from %s: %d of %d parts after %s, handing on what arrived",
                        key[0], len(partial.texts), partial.total, self.timeout)
            out.append(self._joined(key, partial, now))
        return out

    @staticmethod
    def _joined(key: tuple[str, str, int, int], partial: _Partial, now: dt.datetime) -> Incoming:
        text = gsm.join_parts([partial.texts[seq] for seq in sorted(partial.texts)])
        return Incoming(key[0], key[1], text, now, None)

    @property
    def pending(self) -> int:
        """Messages waiting for parts."""
        return len(self._partials)
