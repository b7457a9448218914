"""Carrier lookup: who serves a number, in which country, and what kind of line it is.

The default provider reads phonenumbers' offline carrier and geocoder data. That data names the carrier
a number range was first allocated to (ported numbers keep the old name) and has no carrier names for
North America at all, where CARRIER is empty. An LNP or HLR service can be plugged in behind
CarrierProvider without touching the callers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import phonenumbers
from phonenumbers import PhoneNumberType, carrier, geocoder

from api.core.errors import InvalidPin

logger = logging.getLogger(__name__)


class LineType(StrEnum):
    """What kind of line a number is, as phonenumbers classifies it (lowercase names of PhoneNumberType)."""

    MOBILE = "mobile"
    FIXED_LINE = "fixed_line"
    FIXED_LINE_OR_MOBILE = "fixed_line_or_mobile"
    """Ambiguous: phonenumbers says this of every North American number."""
    TOLL_FREE = "toll_free"
    PREMIUM_RATE = "premium_rate"
    SHARED_COST = "shared_cost"
    VOIP = "voip"
    PERSONAL_NUMBER = "personal_number"
    PAGER = "pager"
    UAN = "uan"
    VOICEMAIL = "voicemail"
    UNKNOWN = "unknown"


_LINE_TYPES: dict[int, LineType] = {
    PhoneNumberType.MOBILE: LineType.MOBILE,
    PhoneNumberType.FIXED_LINE: LineType.FIXED_LINE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: LineType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.TOLL_FREE: LineType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE: LineType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST: LineType.SHARED_COST,
    PhoneNumberType.VOIP: LineType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER: LineType.PERSONAL_NUMBER,
    PhoneNumberType.PAGER: LineType.PAGER,
    PhoneNumberType.UAN: LineType.UAN,
    PhoneNumberType.VOICEMAIL: LineType.VOICEMAIL,
}


@dataclass(frozen=True)
class Country:
    """ISO 3166 alpha-2 code (or '001' for non-geographic numbers such as +800) and English name;
    both empty when the number cannot be placed (an invalid number of a code shared by many countries)."""

    code: str
    name: str


@dataclass(frozen=True)
class CarrierInfo:
    """What a lookup knows of one number."""

    phone: str
    """E.164."""
    country: Country
    carrier: str
    """The carrier's name; empty when unknown (always, for North America with phonenumbers)."""
    line_type: LineType
    valid: bool
    """phonenumbers' is_valid_number (an assigned range); the seed's example numbers are merely possible."""


class CarrierProvider(Protocol):
    """Anything that can look a number up: phonenumbers' data by default, an LNP/HLR service in production."""

    def lookup(self, e164: str) -> CarrierInfo:
        """Describe `e164`; raises InvalidPin (513) when it is not an E.164 number."""
        ...


class PhonenumbersCarrierProvider:
    """CarrierProvider on phonenumbers' offline data (no I/O; the data loads lazily on first use)."""

    def __init__(self, language: str = "en") -> None:
        self._language = language

    def lookup(self, e164: str) -> CarrierInfo:
        number = _parse_e164(e164)
        valid = phonenumbers.is_valid_number(number)
        line_type = _LINE_TYPES.get(phonenumbers.number_type(number), LineType.UNKNOWN)
        name = carrier.name_for_number(number, self._language) if valid else ""
        return CarrierInfo(
            phone=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
            country=self._country(number, valid),
            carrier=name,
            line_type=line_type,
            valid=valid,
        )

    def _country(self, number: phonenumbers.PhoneNumber, valid: bool) -> Country:
        if valid:
            region = phonenumbers.region_code_for_number(number) or ""
            return Country(region, geocoder.country_name_for_number(number, self._language))
        regions = phonenumbers.region_codes_for_country_code(number.country_code or 0)
        if len(regions) != 1:
            return Country("", "")
        example = phonenumbers.example_number(regions[0])
        name = geocoder.country_name_for_number(example, self._language) if example else ""
        return Country(regions[0], name)


def _parse_e164(e164: str) -> phonenumbers.PhoneNumber:
    if not e164.startswith("+"):
        raise InvalidPin(f"not an E.164 number: {e164[:40]!r}")
    try:
        return phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        raise InvalidPin(f"not an E.164 number: {e164[:40]!r}") from None


def can_take_sms(info: CarrierInfo) -> bool | None:
    """Whether an SMS can reach the number, as far as the line type tells.

    False for fixed lines (matrix's `tts=1` turns those into a TTS call at once), True for mobiles, None
    for everything else (fixed_line_or_mobile, voip, toll-free, unknown...): the SMS is tried and the
    fallback waits for the SMSC to refuse it or report it undeliverable."""
    if info.line_type is LineType.FIXED_LINE:
        return False
    if info.line_type is LineType.MOBILE:
        return True
    return None
