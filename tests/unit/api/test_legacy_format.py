"""Legacy answer bodies, byte for byte, and the guarantee that no value breaks the line format."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.core.carrier import CarrierInfo, Country, LineType
from api.core.errors import DoNotCall, InvalidPin
from api.fronts.legacy_format import (
    RecipientResult,
    clean,
    format_money,
    ok_result,
    overall_status,
    render_balance,
    render_carrier,
    render_error,
    render_exception,
    render_json,
    render_rate,
    render_status,
    render_submission,
    render_text,
)
from ivr.errors import UrlRefused
from store.errors import MessageNotFound

T = 1409596234
A = "a" * 32
B = "b" * 32
DNC = RecipientResult(B, "+12508763211", 502, "PIN IN DO NOT CALL DATABASE")


def test_one_recipient_text() -> None:
    body = render_submission([ok_result(A, "+12506063167")], T)
    assert body == f"ID: {A}\nSTATUSCODE: 200\nSTATUSTXT: OK\nTIMESTAMP: 1409596234\n"


def test_one_recipient_json_matches_design() -> None:
    body = render_submission([ok_result(A, "+12506063167")], T, as_json=True)
    assert body == f'{{"ID": "{A}", "STATUSCODE": 200, "STATUSTXT": "OK", "TIMESTAMP": 1409596234}}'


def test_several_recipients_text_blocks() -> None:
    body = render_submission([ok_result(A, "+12506063167"), DNC], T)
    assert body == (
        f"ID: {A}\nPHONE: +12506063167\nSTATUSCODE: 200\nSTATUSTXT: OK\nTIMESTAMP: 1409596234\n"
        "\n"
        f"ID: {B}\nPHONE: +12508763211\nSTATUSCODE: 502\nSTATUSTXT: PIN IN DO NOT CALL DATABASE\n"
        "TIMESTAMP: 1409596234\n"
    )
    assert "\r" not in body


def test_several_recipients_json() -> None:
    body = render_submission([ok_result(A, "+12506063167"), DNC], T, as_json=True)
    assert body == (
        '{"MESSAGES": ['
        f'{{"ID": "{A}", "PHONE": "+12506063167", "STATUSCODE": 200, "STATUSTXT": "OK", '
        '"TIMESTAMP": 1409596234}, '
        f'{{"ID": "{B}", "PHONE": "+12508763211", "STATUSCODE": 502, '
        '"STATUSTXT": "PIN IN DO NOT CALL DATABASE", "TIMESTAMP": 1409596234}], '
        '"STATUSCODE": 200, "STATUSTXT": "OK", "TIMESTAMP": 1409596234}'
    )
    assert list(json.loads(body)) == ["MESSAGES", "STATUSCODE", "STATUSTXT", "TIMESTAMP"]


def test_top_level_code_is_first_success_else_first_error() -> None:
    dnc2 = RecipientResult("", "+12506063167", 503, "INSUFFICIENT BALANCE")
    assert overall_status([DNC, ok_result(A, "+1")]) == (200, "OK")
    assert overall_status([DNC, dnc2]) == (502, "PIN IN DO NOT CALL DATABASE")
    assert overall_status([dnc2, DNC]) == (503, "INSUFFICIENT BALANCE")
    queued = RecipientResult(A, "+1", 100, "Queued")
    assert overall_status([DNC, queued]) == (100, "Queued")
    with pytest.raises(ValueError):
        overall_status([])
    document = json.loads(render_submission([DNC, dnc2], T, as_json=True))
    assert (document["STATUSCODE"], document["STATUSTXT"]) == (502, "PIN IN DO NOT CALL DATABASE")


def test_matrix_status_text_and_json() -> None:
    text = "Voice call answered, duration 18 seconds. R = 1"
    assert render_status(A, 200, text, "1", T) == (
        f"ID: {A}\nSTATUSCODE: 200\nSTATUSTXT: {text}\nRESPONSE: 1\nTIMESTAMP: 1409596234\nTIMEZONE: UTC\n"
    )
    assert render_status(A, 100, "Queued", None, T) == (
        f"ID: {A}\nSTATUSCODE: 100\nSTATUSTXT: Queued\nRESPONSE: \nTIMESTAMP: 1409596234\nTIMEZONE: UTC\n"
    )
    assert render_status(A, 200, text, "1", T, as_json=True) == (
        f'{{"ID": "{A}", "STATUSCODE": 200, "STATUSTXT": "{text}", "RESPONSE": "1", '
        '"TIMESTAMP": 1409596234, "TIMEZONE": "UTC"}'
    )


def test_balance_shows_four_decimals_rounded_down() -> None:
    assert render_balance(Decimal("9.985"), "USD") == "BALANCE: 9.9850\nCURRENCY: USD\n"
    shown = render_balance(Decimal("9.9925"), "USD", as_json=True)
    assert shown == '{"BALANCE": "9.9925", "CURRENCY": "USD"}'
    assert render_balance(Decimal("12.349999"), "USD") == "BALANCE: 12.3499\nCURRENCY: USD\n"
    assert render_balance(5, "CAD", as_json=True) == '{"BALANCE": "5.0000", "CURRENCY": "CAD"}'
    assert render_balance(Decimal("-0.00001"), "USD") == "BALANCE: -0.0001\nCURRENCY: USD\n"
    assert render_balance(Decimal("0.000001"), "USD") == "BALANCE: 0.0000\nCURRENCY: USD\n"


def test_sms_rate() -> None:
    assert render_rate("+12506058145", "sms", Decimal("0.00751"), "USD") == (
        "PHONE: +12506058145\nTYPE: sms\nRATE: 0.0076\nCURRENCY: USD\n"
    )
    assert render_rate("+12506058145", "voice", Decimal("0.02"), "USD", as_json=True) == (
        '{"PHONE": "+12506058145", "TYPE": "voice", "RATE": "0.0200", "CURRENCY": "USD"}'
    )


def test_carrier() -> None:
    info = CarrierInfo("+33612345678", Country("FR", "France"), "SFR", LineType.MOBILE, True)
    assert render_carrier(info) == "PHONE: +33612345678\nCOUNTRY: FR\nCARRIER: SFR\nLINETYPE: mobile\n"
    empty = CarrierInfo("+12506063167", Country("CA", "Canada"), "", LineType.FIXED_LINE_OR_MOBILE, True)
    assert render_carrier(empty) == (
        "PHONE: +12506063167\nCOUNTRY: CA\nCARRIER: \nLINETYPE: fixed_line_or_mobile\n"
    )
    assert render_carrier(empty, as_json=True) == (
        '{"PHONE": "+12506063167", "COUNTRY": "CA", "CARRIER": "", "LINETYPE": "fixed_line_or_mobile"}'
    )


def test_error_answers() -> None:
    assert render_error(505, "USER NOT FOUND OR WRONG PASSWORD", T) == (
        "STATUSCODE: 505\nSTATUSTXT: USER NOT FOUND OR WRONG PASSWORD\nTIMESTAMP: 1409596234\n"
    )
    assert render_error(520, "ERROR PARSING XML", T, as_json=True) == (
        '{"STATUSCODE": 520, "STATUSTXT": "ERROR PARSING XML", "TIMESTAMP": 1409596234}'
    )


def test_render_exception_shows_the_status_never_the_detail() -> None:
    body = render_exception(InvalidPin("not a possible phone number: 'secret-ish'"), T)
    assert body == "STATUSCODE: 513\nSTATUSTXT: INVALID PIN\nTIMESTAMP: 1409596234\n"
    assert render_exception(MessageNotFound(), T, as_json=True) == (
        '{"STATUSCODE": 500, "STATUSTXT": "ERROR: MESSAGE NOT FOUND", "TIMESTAMP": 1409596234}'
    )
    assert render_exception(UrlRefused("x"), T) is not None
    assert render_exception(DoNotCall(), T) is not None
    assert render_exception(KeyError("bug"), T) is None


def test_values_with_line_breaks_are_cleaned_in_text_and_json() -> None:
    body = render_error(500, "ERROR:\r\nINJECTED: 1\n\nX", T)
    assert body == "STATUSCODE: 500\nSTATUSTXT: ERROR: INJECTED: 1 X\nTIMESTAMP: 1409596234\n"
    assert json.loads(render_error(500, "a\u2028b\x85c", T, as_json=True))["STATUSTXT"] == "a b c"


def test_unicode_and_sql_metacharacters_pass_unchanged() -> None:
    value = 'Ünïcödé 名前 🎉 \'; DROP TABLE messages;-- "quoted" \\ %s {x}'
    body = render_status(value, 200, value, None, T)
    assert f"ID: {value}\n" in body
    assert json.loads(render_status(value, 200, value, None, T, as_json=True))["STATUSTXT"] == value
    assert render_status(value, 200, value, None, T, as_json=True).isascii()


@pytest.mark.parametrize("bad", [1.5, "1409596234", True, None])
def test_timestamps_are_int_seconds(bad: object) -> None:
    with pytest.raises(TypeError):
        render_error(500, "ERROR", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "decimals", "round_up", "expected"),
    [
        (Decimal("1.005"), 2, False, "1.00"),
        (Decimal("1.001"), 2, True, "1.01"),
        (Decimal("-1.005"), 2, False, "-1.01"),
        (Decimal("-0.00001"), 2, True, "0.00"),
        (Decimal("1E+3"), 2, False, "1000.00"),
        (10**30, 2, False, "1" + "0" * 30 + ".00"),
        (Decimal("0.00001"), 4, True, "0.0001"),
        (0, 0, False, "0"),
    ],
)
def test_money_formatting(amount: Decimal | int, decimals: int, round_up: bool, expected: str) -> None:
    assert format_money(amount, decimals, round_up=round_up) == expected


def test_money_refuses_floats_and_non_finite() -> None:
    with pytest.raises(TypeError):
        format_money(1.1, 2, round_up=False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_money(True, 2, round_up=False)
    with pytest.raises(ValueError):
        format_money(Decimal("NaN"), 2, round_up=False)
    with pytest.raises(ValueError):
        format_money(Decimal("Infinity"), 2, round_up=False)


# --- properties ----------------------------------------------------------------------------------------

_value = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
_key = st.sampled_from(["ID", "PHONE", "STATUSCODE", "STATUSTXT", "RESPONSE", "TIMESTAMP"])


@given(st.lists(st.lists(st.tuples(_key, _value), min_size=1, max_size=6), min_size=1, max_size=4))
def test_no_value_can_inject_a_line(blocks: list[list[tuple[str, str]]]) -> None:
    body = render_text(blocks)
    lines = body.split("\n")
    expected = sum(len(b) for b in blocks) + len(blocks) - 1
    assert lines[-1] == ""
    assert len(lines) - 1 == expected
    assert len(body.splitlines()) == expected
    cursor = 0
    for index, block in enumerate(blocks):
        for key, value in block:
            assert lines[cursor] == f"{key}: {clean(value)}"
            cursor += 1
        if index < len(blocks) - 1:
            assert lines[cursor] == ""
            cursor += 1


@given(st.lists(st.tuples(_value, _value, st.integers(0, 999), _value), min_size=1, max_size=5), _value)
def test_submissions_keep_their_shape_whatever_the_values(
    rows: list[tuple[str, str, int, str]], noise: str
) -> None:
    results = [RecipientResult(i, p + noise, c, t) for i, p, c, t in rows]
    body = render_submission(results, T)
    per_block = 4 if len(results) == 1 else 5
    assert len(body.splitlines()) == per_block * len(results) + len(results) - 1
    document = json.loads(render_submission(results, T, as_json=True))
    if len(results) == 1:
        assert document["STATUSTXT"] == clean(rows[0][3])
    else:
        assert [m["ID"] for m in document["MESSAGES"]] == [clean(r[0]) for r in rows]


@given(_value)
def test_clean_is_idempotent_and_line_safe(value: str) -> None:
    cleaned = clean(value)
    assert isinstance(cleaned, str)
    assert clean(cleaned) == cleaned
    assert len(f"K: {cleaned}".splitlines()) == 1
    assert json.loads(render_json([("K", value)]))["K"] == cleaned
