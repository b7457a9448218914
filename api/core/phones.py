"""Phone numbers: recipient lists, caller IDs and trunk URIs.

Numbers are parsed by phonenumbers in a default region and accepted when `is_possible_number` holds (the
right length for the country), not only when `is_valid_number` does: the seed's own examples, such as
12501231233 and 6301238534, use unassigned exchanges and are not "valid", yet clients send them. They are
kept in E.164 (`+12506063167`).

A recipient list is the seed's comma-separated `phone`. Entries are split on commas, semicolons and line
breaks; spaces, dots, dashes, slashes and brackets inside an entry are formatting. Empty entries (a
trailing comma) are skipped. Duplicates (after normalisation: `12506063167` and `+1 250 606 3167` are the
same number) produce ONE message, at the position of the first: a client that lists a number twice wants
it reached once and paid once. One bad entry refuses the whole request (513 with the entry in the detail),
so nothing is half-submitted. Letters are refused (no vanity numbers, no `ext`), and so is a number that
is only possible with a '+' the client left out: `447911123456` in region US is not a UK number.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

import phonenumbers

from api.core.errors import InvalidCallerId, InvalidPin, InvalidTrunkTemplate, TooManyRecipients

MAX_ENTRY_CHARS = 40
"""Longest single entry read; E.164 has at most 15 digits, the rest is room for formatting."""
MAX_SENDER_ID_CHARS = 11
"""GSM alphanumeric sender IDs (TP-OA, 7-bit packed into 10 octets)."""

URI_PLACEHOLDERS = ("e164", "number", "national", "cc", "host")
"""What a trunk URI template may use, for +1 250 606 3167 on trunk.example:
{e164} `+12506063167`; {number} `12506063167` (E.164 without '+'); {national} `2506063167` (the national
significant number, no trunk prefix); {cc} `1` (country calling code); {host} `trunk.example`."""

_SPLIT = re.compile(r"[,;\r\n]")
_FORMATTING = frozenset(" -./()\u00a0\t")
_SENDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .&_-]*")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_SHORT_CODE = re.compile(r"[0-9]{3,8}")


@dataclass(frozen=True)
class PhoneSettings:
    """How phone numbers are read (api.core.settings nests it as `phones`)."""

    default_region: str = "US"
    """ISO 3166 region of numbers written without '+' (or without the region's international prefix)."""
    max_recipients: int = 1000
    """Most entries in one request's `phone`, counted before duplicates are removed."""

    def __post_init__(self) -> None:
        if self.default_region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"default_region {self.default_region!r} is not a phonenumbers region")
        if self.max_recipients < 1:
            raise ValueError(f"max_recipients must be at least 1, not {self.max_recipients}")


def _clip(raw: str) -> str:
    """An entry as quoted in a detail: bounded, so a huge entry does not flood the logs."""
    return repr(raw if len(raw) <= MAX_ENTRY_CHARS else raw[:MAX_ENTRY_CHARS] + "...")


def _looks_like_number(text: str) -> bool:
    body = text[1:] if text.startswith("+") else text
    has_digit = any(ch.isdecimal() for ch in body)
    return has_digit and all(ch.isdecimal() or ch in _FORMATTING for ch in body)


def to_e164(raw: str, region: str) -> str | None:
    """`raw` as E.164 when it is a possible number in `region`, else None."""
    text = raw.strip()
    if not text or len(text) > MAX_ENTRY_CHARS or not _looks_like_number(text):
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if number.extension or not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_phone(raw: str, settings: PhoneSettings) -> str:
    """One recipient in E.164, or InvalidPin (513) naming it."""
    e164 = to_e164(raw, settings.default_region)
    if e164 is None:
        raise InvalidPin(f"not a possible phone number: {_clip(raw.strip())}")
    return e164


def split_entries(raw: str) -> list[str]:
    """The non-empty, stripped entries of a `phone` list."""
    return [entry.strip() for entry in _SPLIT.split(raw) if entry.strip()]


def parse_recipients(raw: str, settings: PhoneSettings, *, allow_empty: bool = False) -> tuple[str, ...]:
    """The distinct recipients of a `phone` list in E.164, in first-seen order.

    Raises InvalidPin for an empty list (unless `allow_empty`: matrix with a `group`) or any bad entry,
    TooManyRecipients when the list holds more than `settings.max_recipients` entries."""
    entries = split_entries(raw)
    if not entries and not allow_empty:
        raise InvalidPin("no phone number given")
    if len(entries) > settings.max_recipients:
        limit = settings.max_recipients
        raise TooManyRecipients(f"{len(entries)} recipients, more than the limit of {limit}")
    return tuple(dict.fromkeys(parse_phone(entry, settings) for entry in entries))


@dataclass(frozen=True)
class ParsedPhones:
    """Recipients already read by parse_recipients() (E.164, distinct, within max_recipients), handed
    to api.core.service so a front that validated its form does not parse the numbers again."""

    numbers: tuple[str, ...]
    settings: PhoneSettings
    """The settings they were parsed with (the service re-parses when its own differ)."""

    def __str__(self) -> str:
        return ",".join(self.numbers)


def is_short_code(text: str, region: str) -> bool:
    """3-8 digits without '+' that are not a valid number of `region`: an SMS short code (sent as TON 3)."""
    if not _SHORT_CODE.fullmatch(text):
        return False
    try:
        return not phonenumbers.is_valid_number(phonenumbers.parse(text, region))
    except phonenumbers.NumberParseException:
        return True


def is_sender(text: str) -> bool:
    """Whether `text` has the form of an SMS sender: E.164, a short code of 3-8 digits, or an alphanumeric
    sender ID (1-11 ASCII letters, digits, space, `.&_-`, a letter among them)."""
    if _E164.fullmatch(text) or _SHORT_CODE.fullmatch(text):
        return True
    return (any(ch.isalpha() for ch in text) and len(text) <= MAX_SENDER_ID_CHARS and text.isascii()
            and _SENDER_ID.fullmatch(text) is not None)


def parse_caller_id(raw: str, settings: PhoneSettings, *, sms: bool) -> str | None:
    """The caller ID to present: None when not given, an E.164 number, or (SMS only) an alphanumeric
    sender ID of 1-11 characters (letters, digits, space and `.&_-`, at least one letter) or a short code
    (`is_short_code`: 3-8 digits that are no valid number of the default region, kept as written).

    Raises InvalidCallerId (500 ERROR: INVALID CALLERID) otherwise."""
    text = raw.strip()
    if not text:
        return None
    if sms and is_short_code(text, settings.default_region):
        return text
    if any(ch.isalpha() for ch in text):
        if not sms:
            raise InvalidCallerId(f"a voice caller ID must be a number, not {_clip(text)}")
        if len(text) > MAX_SENDER_ID_CHARS or not _SENDER_ID.fullmatch(text) or not text.isascii():
            raise InvalidCallerId(f"not a sender ID (1-11 letters, digits, space, .&_-): {_clip(text)}")
        return text
    e164 = to_e164(text, settings.default_region)
    if e164 is None:
        raise InvalidCallerId(f"not a possible phone number: {_clip(text)}")
    return e164


def validate_uri_template(template: str) -> None:
    """Raise InvalidTrunkTemplate unless `template` is a sip:/sips: URI using only URI_PLACEHOLDERS."""
    try:
        parsed = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template)]
    except ValueError as exc:
        raise InvalidTrunkTemplate(f"uri_template {template!r}: {exc}") from None
    fields = [name for name, _, _ in parsed if name is not None]
    unknown = [name for name in fields if name not in URI_PLACEHOLDERS]
    if unknown:
        raise InvalidTrunkTemplate(f"uri_template {template!r}: unknown placeholder(s) {unknown}")
    if any(spec or conv for name, spec, conv in parsed if name is not None):
        raise InvalidTrunkTemplate(f"uri_template {template!r}: no format specs or conversions")
    if not template.lower().startswith(("sip:", "sips:")):
        raise InvalidTrunkTemplate(f"uri_template {template!r} must start with sip: or sips:")
    if not any(name in ("e164", "number", "national") for name in fields):
        raise InvalidTrunkTemplate(f"uri_template {template!r} names no number placeholder")


def sip_uri(e164: str, template: str, host: str) -> str:
    """The request URI that dials `e164` through the trunk, e.g. `sip:12506063167@trunk.example`.

    `template` uses URI_PLACEHOLDERS; DESIGN's default is `sip:{number}@{host}`. Raises
    InvalidTrunkTemplate for a bad template, a template that needs a host when none is set, or a
    number that is not E.164."""
    validate_uri_template(template)
    if not _E164.fullmatch(e164):
        raise InvalidTrunkTemplate(f"not an E.164 number: {_clip(e164)}")
    if "{host}" in template and not _valid_host(host):
        raise InvalidTrunkTemplate(f"trunk host {host!r} is empty or not a host[:port]")
    number = phonenumbers.parse(e164)
    return template.format(
        e164=e164,
        number=e164[1:],
        national=phonenumbers.national_significant_number(number),
        cc=str(number.country_code),
        host=host,
    )


_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")


def _valid_host(host: str) -> bool:
    return bool(host) and _HOST.fullmatch(host) is not None


SMPP_TON_UNKNOWN, SMPP_TON_INTERNATIONAL, SMPP_TON_NATIONAL = 0, 1, 2
"""SMPP 3.4 type-of-number values that carry a phone number (5.2.5); 3 network-specific, 4 subscriber,
5 alphanumeric and 6 abbreviated (short codes) do not name a number in E.164's sense."""
SMPP_PHONE_TONS = frozenset({SMPP_TON_UNKNOWN, SMPP_TON_INTERNATIONAL, SMPP_TON_NATIONAL})
SMPP_PHONE_NPIS = frozenset({0, 1, 8})
"""Numbering plans read as phone numbers: unknown, ISDN/E.164 and national."""


def smpp_e164(address: str, ton: int, npi: int, region: str) -> str:
    """An SMPP address (a deliver_sm's source or destination) the way the store keeps numbers.

    International (TON 1) digits get their '+'; national (TON 2) digits are read in `region`, as every
    number a client writes without '+' is; unknown (TON 0) digits are read in `region` first and, when
    that is not a possible number there, as international (SMSCs send full numbers with TON 0 too). A
    leading '+' is international whatever the TON. Anything else (alphanumeric senders, short codes,
    other TONs or numbering plans, digits that are no possible number) comes back as the SMSC wrote it,
    with the '+' of an international number: nothing is dropped, and nothing is guessed into a
    different country (`2505553000` with TON 0 in region US is +1 250 555 3000, never Rwanda)."""
    text = address.strip()
    digits = text.removeprefix("+")
    numeric = digits.isdigit() and digits.isascii()
    if not numeric or npi not in SMPP_PHONE_NPIS or ton not in SMPP_PHONE_TONS:
        return text
    if text.startswith("+") or ton == SMPP_TON_INTERNATIONAL:
        return to_e164("+" + digits, region) or "+" + digits
    if ton == SMPP_TON_NATIONAL:
        return to_e164(digits, region) or digits
    return to_e164(digits, region) or to_e164("+" + digits, region) or digits
