"""SMPP addresses of incoming SMS -> the store's E.164 (api.core.phones.smpp_e164): every TON and NPI."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.core.phones import SMPP_PHONE_NPIS, smpp_e164, to_e164

UNKNOWN, INTERNATIONAL, NATIONAL, NETWORK, SUBSCRIBER, ALPHANUMERIC, ABBREVIATED = range(7)
ISDN = 1


@pytest.mark.parametrize(
    ("address", "ton", "npi", "region", "expected"),
    [
        # the compliance case: a national number with TON 0 or 2 is the default region's, never Rwanda's
        ("2505553000", UNKNOWN, ISDN, "US", "+12505553000"),
        ("2505553000", NATIONAL, ISDN, "US", "+12505553000"),
        ("2505553000", UNKNOWN, 0, "US", "+12505553000"),
        ("2505553000", NATIONAL, 8, "US", "+12505553000"),
        # the same digits sent as international are what they say
        ("2505553000", INTERNATIONAL, ISDN, "US", "+2505553000"),
        ("12505553000", INTERNATIONAL, ISDN, "US", "+12505553000"),
        ("+12505553000", INTERNATIONAL, ISDN, "US", "+12505553000"),
        ("+12505553000", UNKNOWN, ISDN, "GB", "+12505553000"),  # '+' is international whatever the TON
        # TON 0 with a full number: national first, then international
        ("12505553000", UNKNOWN, ISDN, "US", "+12505553000"),
        ("447911123456", UNKNOWN, ISDN, "US", "+447911123456"),
        ("250788123456", UNKNOWN, ISDN, "US", "+250788123456"),
        # national numbers with the region's trunk prefix
        ("07911123456", NATIONAL, ISDN, "GB", "+447911123456"),
        ("07911123456", UNKNOWN, ISDN, "GB", "+447911123456"),
        # the region setting decides
        ("2505553000", NATIONAL, ISDN, "CA", "+12505553000"),
        ("7911123456", NATIONAL, ISDN, "GB", "+447911123456"),
        # national digits that are no possible number: kept as sent, no '+' invented
        ("250555300012345", NATIONAL, ISDN, "US", "250555300012345"),
        ("99", UNKNOWN, ISDN, "US", "99"),
        # short codes, subscriber and network-specific numbers are not E.164
        ("12345", ABBREVIATED, ISDN, "US", "12345"),
        ("5553000", SUBSCRIBER, ISDN, "US", "5553000"),
        ("4321", NETWORK, ISDN, "US", "4321"),
        ("12345", UNKNOWN, ISDN, "US", "12345"),
        # alphanumeric senders unchanged, whatever their TON
        ("ACME", ALPHANUMERIC, 0, "US", "ACME"),
        ("ACME", UNKNOWN, 0, "US", "ACME"),
        ("12345", ALPHANUMERIC, 0, "US", "12345"),
        # numbering plans that are not telephone numbers (data, telex, private, internet)
        ("2505553000", NATIONAL, 9, "US", "2505553000"),
        ("2505553000", INTERNATIONAL, 3, "US", "2505553000"),
        ("2505553000", UNKNOWN, 14, "US", "2505553000"),
        # international digits that are no possible number keep their '+'
        ("999", INTERNATIONAL, ISDN, "US", "+999"),
        # whitespace around the address is not part of it; empty stays empty
        (" 2505553000 ", NATIONAL, ISDN, "US", "+12505553000"),
        ("", UNKNOWN, ISDN, "US", ""),
        ("+", INTERNATIONAL, ISDN, "US", "+"),
        ("٢٥٠٥٥٥٣٠٠٠", NATIONAL, ISDN, "US", "٢٥٠٥٥٥٣٠٠٠"),  # non-ASCII digits are not an address
    ],
)
def test_smpp_address_to_e164(address: str, ton: int, npi: int, region: str, expected: str) -> None:
    assert smpp_e164(address, ton, npi, region) == expected


def _us_numbers() -> st.SearchStrategy[str]:
    area = st.integers(200, 999).filter(lambda n: n % 100 != 11)
    return st.builds(lambda a, b, c: f"{a}{b}{c:04d}", area, st.integers(200, 999), st.integers(0, 9999))


@given(_us_numbers(), st.sampled_from([UNKNOWN, NATIONAL]), st.sampled_from(sorted(SMPP_PHONE_NPIS)))
def test_national_us_numbers_land_in_the_region(national: str, ton: int, npi: int) -> None:
    assert smpp_e164(national, ton, npi, "US") == "+1" + national
    assert smpp_e164("1" + national, ton, npi, "US") == "+1" + national


@given(st.text(alphabet="0123456789+ ", max_size=20), st.integers(0, 6), st.integers(0, 18),
       st.sampled_from(["US", "GB", "DE", "BR"]))
def test_result_is_e164_or_the_address_as_sent(address: str, ton: int, npi: int, region: str) -> None:
    result = smpp_e164(address, ton, npi, region)
    digits = address.strip().removeprefix("+")
    if result.startswith("+") and len(result) > 1 and result[1:] != digits:
        parsed = phonenumbers.parse(result)  # a rewritten number is a real E.164 number
        assert phonenumbers.is_possible_number(parsed)
        assert to_e164(result, region) is not None  # what submissions accept (to_e164 itself, not a copy)
    else:
        assert result in (address.strip(), "+" + digits, digits)
