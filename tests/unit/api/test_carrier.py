"""Carrier lookup on phonenumbers' data, and the SMS rule of matrix's tts fallback."""

from __future__ import annotations

import pytest

from api.core.carrier import (
    CarrierInfo,
    CarrierProvider,
    Country,
    LineType,
    PhonenumbersCarrierProvider,
    can_take_sms,
)
from api.core.errors import InvalidPin

PROVIDER = PhonenumbersCarrierProvider()


def test_the_default_provider_meets_the_protocol() -> None:
    provider: CarrierProvider = PROVIDER
    assert provider.lookup("+33612345678").phone == "+33612345678"


def test_north_american_numbers_have_no_carrier_and_an_ambiguous_type() -> None:
    info = PROVIDER.lookup("+12506063167")
    assert info == CarrierInfo(
        phone="+12506063167",
        country=Country("CA", "Canada"),
        carrier="",
        line_type=LineType.FIXED_LINE_OR_MOBILE,
        valid=True,
    )
    assert can_take_sms(info) is None


def test_a_us_number() -> None:
    info = PROVIDER.lookup("+16307791722")
    assert (info.country, info.line_type, info.valid) == (
        Country("US", "United States"),
        LineType.FIXED_LINE_OR_MOBILE,
        True,
    )


def test_a_french_mobile_has_its_carrier() -> None:
    info = PROVIDER.lookup("+33612345678")
    assert info.country == Country("FR", "France")
    assert info.line_type is LineType.MOBILE
    assert info.carrier == "SFR"
    assert can_take_sms(info) is True


def test_a_german_fixed_line_cannot_take_sms() -> None:
    info = PROVIDER.lookup("+4930123456")
    assert info.line_type is LineType.FIXED_LINE
    assert info.carrier == ""
    assert can_take_sms(info) is False


def test_toll_free_and_non_geographic_numbers() -> None:
    toll_free = PROVIDER.lookup("+18005550100")
    assert toll_free.line_type is LineType.TOLL_FREE
    assert can_take_sms(toll_free) is None
    global_service = PROVIDER.lookup("+80012345678")
    assert global_service.country == Country("001", "")


def test_an_invalid_nanp_number_cannot_be_placed() -> None:
    info = PROVIDER.lookup("+16301238534")
    assert info.valid is False
    assert info.country == Country("", "")
    assert info.line_type is LineType.UNKNOWN
    assert can_take_sms(info) is None


def test_an_invalid_number_of_a_one_country_code_keeps_its_country() -> None:
    info = PROVIDER.lookup("+4930")
    assert info.valid is False
    assert info.country == Country("DE", "Germany")


def test_names_follow_the_language() -> None:
    assert PhonenumbersCarrierProvider("de").lookup("+4930123456").country.name == "Deutschland"


@pytest.mark.parametrize("raw", ["12506063167", "", "+", "+abc", "+1'; DROP TABLE x;--"])
def test_non_e164_input_is_513(raw: str) -> None:
    with pytest.raises(InvalidPin):
        PROVIDER.lookup(raw)


@pytest.mark.parametrize(
    ("line_type", "expected"),
    [
        (LineType.MOBILE, True),
        (LineType.FIXED_LINE, False),
        (LineType.FIXED_LINE_OR_MOBILE, None),
        (LineType.VOIP, None),
        (LineType.TOLL_FREE, None),
        (LineType.PAGER, None),
        (LineType.UNKNOWN, None),
    ],
)
def test_can_take_sms_by_line_type(line_type: LineType, expected: bool | None) -> None:
    info = CarrierInfo("+15550000000", Country("US", "United States"), "", line_type, True)
    assert can_take_sms(info) is expected


class _LnpStub:
    """A stand-in provider, as an LNP service would plug in."""

    def lookup(self, e164: str) -> CarrierInfo:
        return CarrierInfo(e164, Country("US", "United States"), "Ported Wireless", LineType.MOBILE, True)


def test_any_provider_with_lookup_plugs_in() -> None:
    provider: CarrierProvider = _LnpStub()
    assert can_take_sms(provider.lookup("+16307791722")) is True
