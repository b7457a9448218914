"""The sender's pure rules: part keys, concatenation references, receipt precedence, status texts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coded.statuses import DELIVERED, EXPIRED, NO_RECEIPT, UNDELIVERABLE
from sms.receipts import merge_state
from sms.sender import (
    SenderOptions,
    fallback_status,
    kept_reference,
    merge_states,
    parse_key,
    part_key,
    receipt_outcome,
    smpp_address,
    smsc_error_text,
    status_precedence,
)

STATES = ["DELIVRD", "UNDELIV", "REJECTD", "EXPIRED", "ENROUTE", "ACCEPTD", "DELETED", "UNKNOWN", ""]


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (["DELIVRD"], DELIVERED),
        (["DELIVRD", "DELIVRD", "DELIVRD"], DELIVERED),
        (["DELIVRD", ""], None),
        (["DELIVRD", "ENROUTE"], None),
        (["ACCEPTD"], None),
        (["DELIVRD", "UNDELIV"], UNDELIVERABLE),
        (["REJECTD", ""], UNDELIVERABLE),
        (["EXPIRED", "DELIVRD"], EXPIRED),
        (["EXPIRED", "UNDELIV"], UNDELIVERABLE),
        (["DELETED"], UNDELIVERABLE),
        ([], None),
    ],
)
def test_merge_states(states: list[str], expected: tuple[int, str] | None) -> None:
    assert merge_states(states) == expected


@given(st.lists(st.sampled_from(STATES), min_size=1, max_size=6))
def test_delivered_only_when_every_part_is(states: list[str]) -> None:
    status = merge_states(states)
    assert (status == DELIVERED) == all(s == "DELIVRD" for s in states)
    if any(s in ("UNDELIV", "REJECTD") for s in states):
        assert status == UNDELIVERABLE


@given(st.text(alphabet="0123456789abcdef", min_size=32, max_size=32), st.integers(1, 255))
def test_keys_round_trip(message_id: str, part: int) -> None:
    assert parse_key(part_key(message_id, part)) == (message_id, part)


def test_foreign_keys_are_not_ours() -> None:
    assert parse_key("nonsense") is None
    assert parse_key("abc:x") is None


def test_a_kept_reference_is_used_only_with_its_width() -> None:
    assert kept_reference({"concat_ref": 300, "concat_ref_bits": 16}, 16) == 300
    assert kept_reference({"concat_ref": 300, "concat_ref_bits": 16}, 8) is None
    assert kept_reference({"tts_fallback": True}, 8) is None and kept_reference(None, 8) is None


def test_addresses() -> None:
    assert smpp_address("+12505550100") == "12505550100"
    assert smpp_address("ACME") == "ACME"


def test_status_texts() -> None:
    assert smsc_error_text(0x45, "ESME_RSUBMITFAIL") == "0x00000045 ESME_RSUBMITFAIL"
    assert fallback_status(UNDELIVERABLE, "ab12", None) == (605, "Undeliverable; sent as TTS call ab12")
    assert fallback_status(UNDELIVERABLE, None, "PIN IN DO NOT CALL DATABASE") == (
        605, "Undeliverable; TTS fallback refused: PIN IN DO NOT CALL DATABASE")
    assert fallback_status(UNDELIVERABLE, None, None) == UNDELIVERABLE


# --- receipt precedence: the status after the last receipt does not depend on the order --------------

FINAL_STATES = ["DELIVRD", "UNDELIV", "REJECTD", "EXPIRED", "DELETED", "UNKNOWN"]


def fold(parts: int, receipts: list[tuple[int, str]], start: int = 110) -> tuple[int, list[str]]:
    """What the sender does receipt by receipt: each part keeps merge_state, the message moves by
    receipt_outcome. The status code and part states at the end."""
    states, code = [""] * parts, start
    for part, state in receipts:
        states[part] = merge_state(states[part], state)
        outcome = receipt_outcome(code, states)
        if outcome is not None:
            code = outcome[0]
    return code, states


@st.composite
def receipt_orders(draw: st.DrawFn) -> tuple[int, list[tuple[int, str]], list[tuple[int, str]]]:
    parts = draw(st.integers(1, 4))
    receipts = draw(st.lists(st.tuples(st.integers(0, parts - 1), st.sampled_from(STATES[:-1])), max_size=10))
    return parts, receipts, draw(st.permutations(receipts))


@given(receipt_orders())
def test_final_status_does_not_depend_on_receipt_order(case: tuple[int, list[tuple[int, str]],
                                                                   list[tuple[int, str]]]) -> None:
    parts, receipts, shuffled = case
    assert fold(parts, receipts) == fold(parts, shuffled)


@given(receipt_orders(), st.sampled_from([110, 210]))
def test_the_end_is_the_precedence_of_all_receipts(case: tuple[int, list[tuple[int, str]],
                                                               list[tuple[int, str]]], start: int) -> None:
    parts, receipts, _ = case
    code, states = fold(parts, receipts, start)
    merged = merge_states(states)
    assert code == (merged[0] if merged is not None else start)
    if any(s in ("UNDELIV", "REJECTD", "DELETED", "UNKNOWN") for _, s in receipts):
        assert code == 605
    elif any(s == "EXPIRED" for _, s in receipts):
        assert code == 606
    elif all(any(p == n and s == "DELIVRD" for p, s in receipts) for n in range(parts)):
        assert code == 200
    else:
        assert code == start


@given(st.sampled_from(STATES), st.sampled_from(STATES), st.sampled_from(STATES))
def test_merge_state_is_an_order_free_maximum(a: str, b: str, c: str) -> None:
    assert merge_state(a, b) == merge_state(b, a)
    assert merge_state(merge_state(a, b), c) == merge_state(a, merge_state(b, c))
    assert merge_state(a, a) == a


@pytest.mark.parametrize(
    ("receipts", "expected"),
    [
        ([(0, "EXPIRED"), (0, "UNDELIV")], 605),  # the same part, the example
        ([(0, "UNDELIV"), (0, "EXPIRED")], 605),
        ([(0, "EXPIRED"), (1, "UNDELIV")], 605),  # across parts
        ([(0, "UNDELIV"), (1, "DELIVRD"), (0, "DELIVRD")], 605),  # a late DELIVRD does not flip it back
        ([(0, "DELIVRD"), (1, "DELIVRD")], 200),
        ([(0, "DELIVRD"), (1, "ENROUTE")], 110),
        ([(0, "DELIVRD"), (1, "DELIVRD"), (1, "EXPIRED")], 606),  # Delivered raised by a later failure
    ],
)
def test_precedence_examples(receipts: list[tuple[int, str]], expected: int) -> None:
    assert fold(2, receipts)[0] == expected


def test_finished_statuses_only_rise() -> None:
    assert receipt_outcome(606, ["UNDELIV"]) == UNDELIVERABLE
    assert receipt_outcome(605, ["DELIVRD"]) is None
    assert receipt_outcome(200, ["EXPIRED"]) == EXPIRED
    assert receipt_outcome(NO_RECEIPT[0], ["DELIVRD"]) == DELIVERED
    assert receipt_outcome(NO_RECEIPT[0], ["ENROUTE"]) is None
    assert [status_precedence(c) for c in (110, 210, 200, 606, 605)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("bad", [{"batch": 0}, {"max_in_flight": 0}, {"max_parts": 0},
                                 {"receipt_timeout_s": 0}])
def test_sender_options_are_checked(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SenderOptions(worker_id="w", **bad)  # type: ignore[arg-type]


def test_sweep_interval() -> None:
    assert SenderOptions(worker_id="w").sweep_interval_s == 60.0
    assert SenderOptions(worker_id="w", receipt_timeout_s=1.0).sweep_interval_s == 0.25
