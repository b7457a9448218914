"""coded.statuses mirrors the message status table of docs/DESIGN.md, text for text; the templates fill
in as the table says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coded import statuses
from coded.statuses import (
    CALL_FAILED_NETWORK,
    TABLE,
    answered_text,
    call_failed_text,
    is_success,
)

DESIGN = Path(__file__).resolve().parents[3] / "docs" / "DESIGN.md"
HEADING = "### Message status codes"
PLACEHOLDERS = {"N": "N", "D": "D", "NNN": "NNN"}
"""The table's own placeholders: the duration, the key, the SIP code."""


def design_rows() -> list[tuple[int, str]]:
    """(code, text) of every STATUSTXT in DESIGN.md's table, in its order; a cell may list several
    texts (`Calling` / `Sent to SMSC`)."""
    lines = DESIGN.read_text(encoding="utf-8").split(HEADING, 1)[1].splitlines()
    table = _first_table(lines)
    assert table[0].startswith("| code | STATUSTXT") and set(table[1]) <= set("|- ")
    rows: list[tuple[int, str]] = []
    for line in table[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows += [(int(cells[0]), text) for text in re.findall(r"`([^`]+)`", cells[1])]
    return rows


def _first_table(lines: list[str]) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def test_the_module_mirrors_the_design_table() -> None:
    documented = design_rows()
    assert len(documented) >= 20
    assert [(code, text.format(**PLACEHOLDERS)) for code, text in TABLE] == documented


def test_every_status_constant_is_in_the_table() -> None:
    constants = [value for name, value in vars(statuses).items()
                 if name.isupper() and isinstance(value, tuple) and name not in ("TABLE", "OK")]
    assert constants and set(constants) <= set(TABLE)


@pytest.mark.parametrize(("code", "text"), TABLE)
def test_texts_are_exact_and_codes_in_the_seed_ranges(code: int, text: str) -> None:
    assert text == text.strip() and text.isascii() and "  " not in text
    assert 100 <= code <= 699
    assert is_success(code) == (code < 400)


@given(st.integers(min_value=0, max_value=10_000), st.sampled_from("0123456789*#"))
def test_answered_texts_fill_the_templates(seconds: int, digit: str) -> None:
    head = f"Voice call answered, duration {seconds} seconds."
    assert answered_text(seconds, response_wanted=True, digit=digit) == f"{head} R = {digit}"
    assert answered_text(seconds, response_wanted=True, digit=None) == f"{head} No response"
    assert answered_text(seconds, response_wanted=False, digit=None) == head


@given(st.integers(min_value=300, max_value=699))
def test_call_failed_text_names_the_sip_code(sip_code: int) -> None:
    assert call_failed_text(sip_code) == f"Call failed (SIP {sip_code})"


def test_a_failure_without_a_sip_code_is_a_network_error() -> None:
    assert call_failed_text(None) == CALL_FAILED_NETWORK[1] == "Call failed (network error)"


def test_the_seed_success_range() -> None:
    assert [is_success(c) for c in (0, 100, 200, 210, 399, 400, 502, 600, 606, -1)] == [
        True, True, True, True, True, False, False, False, False, False]
    assert statuses.OK == (200, "OK")
