"""Recipient lists, caller IDs and trunk URIs."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.core.errors import InvalidCallerId, InvalidPin, InvalidTrunkTemplate, TooManyRecipients, status_of
from api.core.phones import (
    MAX_ENTRY_CHARS,
    PhoneSettings,
    is_sender,
    is_short_code,
    parse_caller_id,
    parse_phone,
    parse_recipients,
    sip_uri,
    split_entries,
    to_e164,
    validate_uri_template,
)

US = PhoneSettings()
GB = PhoneSettings(default_region="GB")

SEED_NUMBERS = {
    "12506063167": "+12506063167",
    "12508763211": "+12508763211",
    "12501231233": "+12501231233",
    "12506058145": "+12506058145",
    "2506063167": "+12506063167",
    "12502771720": "+12502771720",
    "16307791722": "+16307791722",
    "12502012503": "+12502012503",
    "12501112233": "+12501112233",
    "12501238585": "+12501238585",
    "13451238585": "+13451238585",
    "6301238534": "+16301238534",
}


@pytest.mark.parametrize(("raw", "e164"), SEED_NUMBERS.items())
def test_every_number_of_the_seed_is_accepted(raw: str, e164: str) -> None:
    assert parse_phone(raw, US) == e164


def test_seed_examples_are_possible_but_not_all_valid() -> None:
    for raw in ("12501231233", "6301238534"):
        number = phonenumbers.parse(raw, "US")
        assert phonenumbers.is_possible_number(number)
        assert not phonenumbers.is_valid_number(number)


@pytest.mark.parametrize(
    "raw",
    [
        "+1 250 606 3167",
        "+1 (250) 606-3167",
        "250.606.3167",
        "1-250-606-3167",
        " 12506063167 ",
        "+1/250/606/3167",
        "１２５０６０６３１６７",  # fullwidth digits
        "١٢٥٠٦٠٦٣١٦٧",  # Arabic-Indic digits
        "01112506063167",  # US international prefix
    ],
)
def test_formatting_variants_normalise_to_one_e164(raw: str) -> None:
    assert parse_phone(raw, US) == "+12506063167"


def test_international_numbers_need_plus_or_idd() -> None:
    assert parse_phone("+447911123456", US) == "+447911123456"
    assert parse_phone("011447911123456", US) == "+447911123456"
    assert parse_phone("07911123456", GB) == "+447911123456"
    with pytest.raises(InvalidPin):
        parse_phone("447911123456", US)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "123",
        "+1250606316",
        "12345678901234567",
        "abc",
        "12506063167abc",
        "1-800-FLOWERS",
        "+1 250 606 3167 ext 5",
        "tel:+12506063167",
        "12506063167'; DROP TABLE messages;--",
        "1250606316\x00",
        "++12506063167",
        "+",
        "1" * (MAX_ENTRY_CHARS + 1),
        "📞12506063167",
    ],
)
def test_impossible_or_malformed_numbers_are_513(raw: str) -> None:
    assert to_e164(raw, "US") is None
    with pytest.raises(InvalidPin) as caught:
        parse_phone(raw, US)
    assert status_of(caught.value) == (513, "INVALID PIN")


def test_the_detail_names_the_offending_entry() -> None:
    with pytest.raises(InvalidPin) as caught:
        parse_recipients("12506063167, 99x, 12508763211", US)
    assert "'99x'" in caught.value.detail


def test_long_entries_are_clipped_in_the_detail() -> None:
    with pytest.raises(InvalidPin) as caught:
        parse_phone("9" * 5000, US)
    assert len(caught.value.detail) < 120


def test_list_is_split_on_commas_semicolons_and_line_breaks() -> None:
    raw = "12506063167, 12508763211;6301238534\n12502771720\r\n+447911123456"
    assert parse_recipients(raw, US) == (
        "+12506063167",
        "+12508763211",
        "+16301238534",
        "+12502771720",
        "+447911123456",
    )


def test_empty_entries_and_whitespace_are_skipped() -> None:
    assert parse_recipients(" ,12506063167,, ,", US) == ("+12506063167",)
    assert split_entries(" a , ,b,") == ["a", "b"]


def test_duplicates_collapse_to_the_first_occurrence() -> None:
    raw = "12508763211,12506063167,+1 250 606 3167,2506063167,12508763211"
    assert parse_recipients(raw, US) == ("+12508763211", "+12506063167")


@pytest.mark.parametrize("raw", ["", " ", ",,", " , ;\n"])
def test_an_empty_list_is_513(raw: str) -> None:
    with pytest.raises(InvalidPin):
        parse_recipients(raw, US)
    assert parse_recipients(raw, US, allow_empty=True) == ()


def test_one_bad_entry_refuses_the_whole_list() -> None:
    with pytest.raises(InvalidPin):
        parse_recipients("12506063167,123", US)


def test_the_recipient_cap_counts_entries_before_duplicates() -> None:
    settings = PhoneSettings(max_recipients=3)
    assert parse_recipients("12506063167," * 3, settings) == ("+12506063167",)
    with pytest.raises(TooManyRecipients) as caught:
        parse_recipients("12506063167," * 4, settings)
    assert status_of(caught.value) == (513, "INVALID PIN")


def test_settings_refuse_unknown_regions_and_bad_caps() -> None:
    with pytest.raises(ValueError, match="region"):
        PhoneSettings(default_region="XX")
    with pytest.raises(ValueError, match="max_recipients"):
        PhoneSettings(max_recipients=0)


# --- caller IDs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sms", [True, False])
def test_numeric_caller_ids_become_e164(sms: bool) -> None:
    assert parse_caller_id("12501231233", US, sms=sms) == "+12501231233"
    assert parse_caller_id(" +1 (630) 779-1722 ", US, sms=sms) == "+16307791722"
    assert parse_caller_id("", US, sms=sms) is None
    assert parse_caller_id("   ", US, sms=sms) is None


@pytest.mark.parametrize("sender", ["MyShop", "A", "Dentist 1", "ACME-Corp", "AB&C.co_12"])
def test_alphanumeric_sender_ids_for_sms_only(sender: str) -> None:
    assert parse_caller_id(sender, US, sms=True) == sender
    with pytest.raises(InvalidCallerId) as caught:
        parse_caller_id(sender, US, sms=False)
    assert status_of(caught.value) == (500, "ERROR: INVALID CALLERID")


@pytest.mark.parametrize(
    "sender",
    ["TwelveChars1", "Héllo", "My'Shop", "a;DROP", "-Shop", "Shop\x00", "名前"],
)
def test_bad_sender_ids_are_refused(sender: str) -> None:
    with pytest.raises(InvalidCallerId):
        parse_caller_id(sender, US, sms=True)


@pytest.mark.parametrize("raw", ["12", "+", "99999999999999999999", "123456789"])
def test_impossible_numeric_caller_ids_are_refused(raw: str) -> None:
    with pytest.raises(InvalidCallerId):
        parse_caller_id(raw, US, sms=True)


@pytest.mark.parametrize("raw", ["123", "72345", "898211", "12345678"])
def test_short_codes_are_sms_senders_as_written(raw: str) -> None:
    assert parse_caller_id(raw, US, sms=True) == raw
    assert is_sender(raw)
    with pytest.raises(InvalidCallerId):
        parse_caller_id(raw, US, sms=False)


def test_a_valid_national_number_is_not_a_short_code() -> None:
    danish = PhoneSettings(default_region="DK")
    assert parse_caller_id("32123456", danish, sms=True) == "+4532123456"
    assert not is_short_code("32123456", "DK") and is_short_code("32123456", "US")


@pytest.mark.parametrize(("raw", "ok"), [("+12505550100", True), ("ACME", True), ("ACME Alerts", True),
                                         ("", False), ("12", False), ("TwelveChars1", False), ("+", False)])
def test_is_sender(raw: str, ok: bool) -> None:
    assert is_sender(raw) is ok


# --- trunk URIs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("sip:{number}@{host}", "sip:12506063167@trunk.example"),
        ("sip:{e164}@{host}", "sip:+12506063167@trunk.example"),
        ("sip:{national}@{host}", "sip:2506063167@trunk.example"),
        ("sip:00{cc}{national}@{host};user=phone", "sip:0012506063167@trunk.example;user=phone"),
        ("sips:{number}@10.0.0.1:5061", "sips:12506063167@10.0.0.1:5061"),
    ],
)
def test_sip_uri_renders_every_placeholder(template: str, expected: str) -> None:
    assert sip_uri("+12506063167", template, "trunk.example") == expected


def test_sip_uri_national_drops_no_digits_outside_nanp() -> None:
    assert sip_uri("+447911123456", "sip:{national}@{host}", "[::1]:5060") == "sip:7911123456@[::1]:5060"
    assert sip_uri("+4930123456", "sip:{cc}-{national}@{host}", "h") == "sip:49-30123456@h"


@pytest.mark.parametrize(
    "template",
    [
        "sip:{phone}@{host}",
        "sip:{}@{host}",
        "sip:{0}@{host}",
        "sip:{number!r}@{host}",
        "sip:{number:>20}@{host}",
        "sip:{number.real}@{host}",
        "tel:{number}",
        "sip:{number@{host}",
        "sip:alice@{host}",
    ],
)
def test_bad_templates_are_refused(template: str) -> None:
    with pytest.raises(InvalidTrunkTemplate):
        validate_uri_template(template)
    with pytest.raises(InvalidTrunkTemplate):
        sip_uri("+12506063167", template, "trunk.example")


@pytest.mark.parametrize("host", ["", "trunk example", "host;transport=tcp", "a@b", "h:port"])
def test_a_template_with_host_needs_a_real_host(host: str) -> None:
    with pytest.raises(InvalidTrunkTemplate):
        sip_uri("+12506063167", "sip:{number}@{host}", host)


@pytest.mark.parametrize("number", ["12506063167", "+0123", "+1 250", "+12506063167;x", ""])
def test_sip_uri_wants_e164(number: str) -> None:
    with pytest.raises(InvalidTrunkTemplate):
        sip_uri(number, "sip:{number}@{host}", "trunk.example")


# --- properties ----------------------------------------------------------------------------------------

_entry = st.one_of(
    st.sampled_from(list(SEED_NUMBERS)),
    st.text(alphabet="0123456789 +-().", max_size=20),
    st.text(max_size=12),
)


@given(st.lists(_entry, max_size=12), st.sampled_from([",", ", ", ";", "\n"]))
def test_parsed_lists_are_distinct_e164_or_a_513(entries: list[str], sep: str) -> None:
    raw = sep.join(entries)
    try:
        parsed = parse_recipients(raw, US, allow_empty=True)
    except InvalidPin:
        assert any(to_e164(e, "US") is None for e in split_entries(raw))
        return
    assert len(set(parsed)) == len(parsed)
    for number in parsed:
        assert number.startswith("+") and number[1:].isdigit()
        assert parse_phone(number, US) == number
    assert set(parsed) == {to_e164(e, "US") for e in split_entries(raw)}


@given(st.lists(st.sampled_from(list(SEED_NUMBERS)), min_size=1, max_size=20))
def test_order_is_first_seen(entries: list[str]) -> None:
    expected = list(dict.fromkeys(SEED_NUMBERS[e] for e in entries))
    assert list(parse_recipients(",".join(entries), US)) == expected
