"""One digit stream out of three DTMF transports (pure: times are arguments).

A trunk may deliver one key press twice: as an RFC 4733 telephone-event and as the tone
itself in the audio, or as a SIP INFO and a tone. DESIGN.md says one key press is one
digit, however many ways it arrives, so the SIP adapter passes every digit it hears
through a `DigitMerger` and reports only what the merger returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SOURCES = ("rfc4733", "info", "inband")
"""The transports a digit can arrive by."""

DEFAULT_WINDOW_S = 0.6
"""How far apart the same key press may arrive by two transports. A tone detector reports a
digit up to a tone length (typically 40-200 ms) after the event that announced it; a SIP INFO
can trail the RTP by a network round trip."""


@dataclass
class _Press:
    digit: str
    t: float
    sources: set[str] = field(default_factory=set)


class DigitMerger:
    """Merges digits from several transports so that each key press counts once.

    A digit is a duplicate when the same digit arrived by a *different* transport within
    `window_s`, and that earlier press has not yet been matched by this transport. Digits
    repeated on one transport are always distinct presses (each transport already reports
    one digit per press), so a quick '11' stays two presses.
    """

    def __init__(self, window_s: float = DEFAULT_WINDOW_S) -> None:
        if window_s < 0:
            raise ValueError("window_s must not be negative")
        self.window_s = window_s
        self._recent: list[_Press] = []

    def feed(self, digit: str, source: str, t: float) -> str | None:
        """Offer a digit heard at time `t` (seconds, any monotonic clock) by `source`.

        Returns the digit when it is a new key press, None when it repeats one already
        reported by another transport.
        """
        if source not in SOURCES:
            raise ValueError(f"unknown DTMF source: {source!r}")
        self._recent = [p for p in self._recent if t - p.t <= self.window_s]
        for press in self._recent:
            if press.digit == digit and source not in press.sources:
                press.sources.add(source)
                return None
        self._recent.append(_Press(digit, t, {source}))
        return digit

    def reset(self) -> None:
        """Forget every recent press (e.g. when a call ends)."""
        self._recent.clear()


DTMF_KEYS = frozenset("0123456789*#ABCD")


def dtmf_from_info(message: str) -> str | None:
    """The key carried by a SIP INFO request whose body is `application/dtmf` (a bare key).

    pjsua decodes application/dtmf-relay itself but not this older form, which some
    trunks still send. Returns None for any other request or body.
    """
    head, sep, body = message.replace("\r\n", "\n").partition("\n\n")
    if not sep or not head.upper().startswith("INFO "):
        return None
    for line in head.split("\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() in ("content-type", "c"):
            if value.split(";")[0].strip().lower() != "application/dtmf":
                return None
            key = body.strip().upper()
            return key if len(key) == 1 and key in DTMF_KEYS else None
    return None
