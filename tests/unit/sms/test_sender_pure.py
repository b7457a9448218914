"""The sender's pure rules: part keys, concatenation references, receipt merging, status texts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms.sender import (
    DELIVERED,
    EXPIRED,
    UNDELIVERABLE,
    fallback_status,
    kept_reference,
    merge_states,
    parse_key,
    part_key,
    smpp_address,
    smsc_error_text,
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
