"""Opt-out keywords in incoming SMS: STOP, HELP and START (pure).

Carriers and the CTIA handbook expect a short code or long number to honour a fixed set of words sent
on their own: STOP (and STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT...) ends the messages, HELP
(INFO) asks who is texting, START (UNSTOP, YES) opts back in. Spanish and French variants are accepted
too (BAJA, ALTO, AYUDA, ARRET, AIDE), since the gateway serves US and Latin-American audiences.

A keyword counts only when it is the whole message, so "please don't stop" stays an ordinary message.
Comparison ignores case, accents, punctuation, extra spacing and full-width forms (NFKC): "Stop.",
"STOP ALL", "¡Baja!" and "ＳＴＯＰ" all count.
"""

from __future__ import annotations

import enum
import re
import unicodedata


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
