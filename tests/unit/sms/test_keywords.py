"""STOP / HELP / START detection: whole-message keywords, any case, accents, punctuation, spacing."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms import gsm
from sms.keywords import (
    DEFAULT_HELP,
    DEFAULT_START,
    DEFAULT_STOP,
    Keyword,
    Replies,
    detect,
    normalise,
    placeholders,
    render,
)


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


# --- answers ---------------------------------------------------------------------------------------------


def test_default_answers_name_the_brand_and_the_contact() -> None:
    replies = Replies.from_templates(brand="Acme Clinic", contact="+1 800 555 0100")
    assert replies.help == ("Acme Clinic: reminders and alerts. Reply STOP to unsubscribe. "
                            "Help: +1 800 555 0100")
    assert replies.stop == ("Acme Clinic: you are unsubscribed and will receive no more messages. "
                            "Reply START to resubscribe.")
    assert replies.start == "Acme Clinic: you are subscribed again. Reply STOP to unsubscribe, HELP for help."
    assert [replies.to(k) for k in (Keyword.HELP, Keyword.STOP, Keyword.START, None)] == [
        replies.help, replies.stop, replies.start, ""]


def test_without_a_contact_help_leaves_that_sentence_out() -> None:
    replies = Replies.from_templates(brand="Acme", contact="  ")
    assert replies.help == "Acme: reminders and alerts. Reply STOP to unsubscribe."


def test_an_empty_template_means_no_answer() -> None:
    replies = Replies.from_templates(brand="Acme", help="", stop="  ", start=DEFAULT_START)
    assert (replies.help, replies.stop) == ("", "")
    assert replies.to(Keyword.START).startswith("Acme: you are subscribed again.")


def test_templates_keep_their_own_spacing_and_literal_braces() -> None:
    template = "{brand} alerts.\nCall {contact} for help!  {{not a placeholder}}"
    assert render(template, brand="Acme", contact="") == "Acme alerts.\n{not a placeholder}"
    with_contact = render(template, brand="Acme", contact="611")
    assert with_contact == "Acme alerts.\nCall 611 for help!  {not a placeholder}"
    assert render("No placeholders at all", brand="", contact="") == "No placeholders at all"


@pytest.mark.parametrize(("template", "reason"), [
    ("{name}: hello", "{name}"),
    ("{brand} {0}", "{0}"),
    ("{brand", "brace"),
    ("brand}", "brace"),
])
def test_bad_templates_are_refused(template: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        placeholders(template)


def test_placeholders_of_the_defaults() -> None:
    assert placeholders(DEFAULT_HELP) == {"brand", "contact"}
    assert placeholders(DEFAULT_STOP) == placeholders(DEFAULT_START) == {"brand"}


_VALUE = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30)


@given(_VALUE, _VALUE)
def test_values_are_never_read_as_templates(brand: str, contact: str) -> None:
    """Whatever the settings hold (braces, dots, newlines), the answer is the template with them in it."""
    replies = Replies.from_templates(brand=brand, contact=contact)
    if brand.strip():
        assert replies.stop.startswith(f"{brand.strip()}: you are unsubscribed")
        assert replies.help.startswith(f"{brand.strip()}: reminders and alerts.")
    ending = f"Help: {contact.strip()}" if contact.strip() else "Reply STOP to unsubscribe."
    assert replies.help.endswith(ending)


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz &-.", min_size=1, max_size=30),
       st.text(alphabet="0123456789 +-()", max_size=20))
def test_default_answers_fit_one_sms_for_a_short_brand_and_number(brand: str, contact: str) -> None:
    """Carriers expect one SMS: with a brand up to 30 and a phone contact up to 20 characters, each
    default answer is one GSM-7 SMS."""
    for text in (t for t in Replies.from_templates(brand=brand, contact=contact).__dict__.values() if t):
        assert gsm.count_parts(text, 6) == 1, text
