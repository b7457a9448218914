"""STOP / HELP / START detection: whole-message keywords, any case, accents, punctuation, spacing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms.keywords import Keyword, detect, normalise


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", Keyword.STOP),
        ("stop", Keyword.STOP),
        ("  Stop.  ", Keyword.STOP),
        ("STOP ALL", Keyword.STOP),
        ("stopall", Keyword.STOP),
        ("Unsubscribe", Keyword.STOP),
        ("cancel", Keyword.STOP),
        ("QUIT!", Keyword.STOP),
        ("opt-out", Keyword.STOP),
        ("¡Baja!", Keyword.STOP),
        ("Arrêt", Keyword.STOP),
        ("ＳＴＯＰ", Keyword.STOP),
        ("help", Keyword.HELP),
        ("HELP?", Keyword.HELP),
        ("Info", Keyword.HELP),
        ("ayuda", Keyword.HELP),
        ("start", Keyword.START),
        ("UNSTOP", Keyword.START),
        ("Yes", Keyword.START),
        ("stop\n", Keyword.STOP),
    ],
)
def test_keywords(text: str, expected: Keyword) -> None:
    assert detect(text) is expected


@pytest.mark.parametrize(
    "text",
    ["please stop", "don't stop me now", "stopper", "I need help with my order", "help me", "", "   ",
     "st op", "STOP STOP", "restart"],
)
def test_ordinary_messages_are_not_keywords(text: str) -> None:
    assert detect(text) is None


def test_normalise_folds_case_accents_and_punctuation() -> None:
    assert normalise("  ¡Arrêt,   TOUT! ") == "arret tout"


@given(st.sampled_from(["stop", "help", "start"]), st.text(alphabet=" .!?,;:-'\"\t", max_size=6))
def test_surrounding_punctuation_never_matters(word: str, noise: str) -> None:
    assert detect(noise + word.upper() + noise) is detect(word)


@given(st.sampled_from(["stop", "help", "start", "cancel"]),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=8).filter(
           lambda w: detect(w) is None and w not in ("all", "out")))
def test_a_keyword_inside_a_sentence_is_no_keyword(keyword: str, other: str) -> None:
    assert detect(f"{other} {keyword}") is None
    assert detect(f"{keyword} {other}") is None
