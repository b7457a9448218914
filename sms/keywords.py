"""Opt-out keywords in incoming SMS: STOP, HELP and START (pure).

Carriers and the CTIA handbook expect a short code or long number to honour a fixed set of words sent
on their own: STOP (and STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT...) ends the messages, HELP
(INFO) asks who is texting, START (UNSTOP, YES) opts back in. Spanish and French variants are accepted
too (BAJA, ALTO, AYUDA, ARRET, AIDE), since the gateway serves US and Latin-American audiences.

A keyword counts only when it is the whole message, so "please don't stop" stays an ordinary message.
Comparison ignores case, accents, punctuation, extra spacing and full-width forms (NFKC): "Stop.",
"STOP ALL", "¡Baja!" and "ＳＴＯＰ" all count.

The answers (`Replies`) are templates with `{brand}` (the program's name) and `{contact}` (where to get
help: a phone number, an address or a web page); the defaults say what carriers expect of each:

    HELP   {brand}: reminders and alerts. Reply STOP to unsubscribe. Help: {contact}
    STOP   {brand}: you are unsubscribed and will receive no more messages. Reply START to resubscribe.
    START  {brand}: you are subscribed again. Reply STOP to unsubscribe, HELP for help.

A sentence whose placeholder has no value is left out, so without a contact HELP ends at "unsubscribe.".
"""

from __future__ import annotations

import enum
import re
import string
import unicodedata
from dataclasses import dataclass


class Keyword(enum.StrEnum):
    STOP = "STOP"
    HELP = "HELP"
    START = "START"


_WORDS: dict[str, Keyword] = {
    **dict.fromkeys(
        (
            "stop", "stopall", "stop all", "unsubscribe", "cancel", "end", "quit", "optout", "opt out",
            "revoke", "baja", "alto", "parar", "arret", "arreter",
        ),
        Keyword.STOP,
    ),
    **dict.fromkeys(("help", "info", "ayuda", "aide"), Keyword.HELP),
    **dict.fromkeys(
        ("start", "unstop", "yes", "subscribe", "optin", "opt in", "alta"), Keyword.START
    ),
}

_PUNCTUATION = re.compile(r"[^\w\s]+")
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """`text` lower-cased, without accents, punctuation or repeated spaces: the form keywords match in."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    bare = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", bare).replace("_", " ")).strip()


def detect(text: str) -> Keyword | None:
    """The keyword `text` consists of, or None for any other message."""
    return _WORDS.get(normalise(text))


# --------------------------------------------------------------------------------------------- answers

DEFAULT_HELP = "{brand}: reminders and alerts. Reply STOP to unsubscribe. Help: {contact}"
DEFAULT_STOP = "{brand}: you are unsubscribed and will receive no more messages. Reply START to resubscribe."
DEFAULT_START = "{brand}: you are subscribed again. Reply STOP to unsubscribe, HELP for help."
PLACEHOLDERS = frozenset({"brand", "contact"})

_SENTENCE_END = re.compile(r"(?<=[.!?])(\s+)")
"""Splits a template into sentences, keeping the spacing after each (a capture group)."""


def placeholders(template: str) -> set[str]:
    """The names a template uses; ValueError for an unknown name or a stray brace ('{{' and '}}' are
    literal braces)."""
    try:
        found = {name for _, name, spec, conv in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"{template[:40]!r}: {exc} (write a literal brace as {{{{ or }}}})") from None
    unknown = found - PLACEHOLDERS
    if unknown:
        names = ", ".join(sorted(f"{{{n}}}" for n in unknown))
        raise ValueError(f"{template[:40]!r} uses {names}; only {{brand}} and {{contact}} are known")
    return found


def render(template: str, *, brand: str, contact: str) -> str:
    """The template with its placeholders filled; sentences whose placeholder is empty are left out."""
    values = {"brand": brand.strip(), "contact": contact.strip()}
    pieces = _SENTENCE_END.split(template.strip())
    sentences = zip(pieces[::2], [*pieces[1::2], ""], strict=True)
    kept = "".join(sentence + space for sentence, space in sentences
                   if all(values[name] for name in placeholders(sentence)))
    return kept.format(**values).strip()


@dataclass(frozen=True)
class Replies:
    """The SMS answering each keyword ('' for none: the keyword still acts, nothing is sent back)."""

    help: str
    stop: str
    start: str

    @classmethod
    def from_templates(cls, *, brand: str, contact: str = "", help: str = DEFAULT_HELP,
                       stop: str = DEFAULT_STOP, start: str = DEFAULT_START) -> Replies:
        """Answers from templates; an empty template means no answer."""
        texts = (render(t, brand=brand, contact=contact) if t.strip() else "" for t in (help, stop, start))
        return cls(*texts)

    def to(self, keyword: Keyword | None) -> str:
        """The answer to `keyword` ('' for none, and for an ordinary message)."""
        if keyword is None:
            return ""
        return {Keyword.HELP: self.help, Keyword.STOP: self.stop, Keyword.START: self.start}[keyword]
