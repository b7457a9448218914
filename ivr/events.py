"""The plain types of the SIP engine's events, without pjsua2.

The parent process (API, dialer, engine pool) only ever sees these: it talks to engine processes
over pipes and must not load pjsua2 (tens of MiB, and one Endpoint per process). `ivr.sip`
re-exports them for code that runs inside an engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EventKind = Literal[
    "incoming", "calling", "ringing", "answered", "media", "digit",
    "playback_done", "recording_done", "disconnected", "error", "registration",
]
"""What a `SipEvent` reports ('registration' belongs to no call: its ref is "registration")."""
DigitSource = Literal["rfc4733", "info", "inband", ""]
"""How a digit arrived ('' on events that carry no digit)."""
DtmfMethod = Literal["rfc4733", "info", "inband"]
"""How digits are sent."""
NOT_REGISTERED = "not registered"
"""Start of the reason of a call the user agent refused because its registration failed or did not
complete in time (`SipSettings.register_wait_s`); the dialer records `Call failed (registration)`."""


@dataclass(frozen=True)
class SipEvent:
    """Something that happened to a call, reported through the user agent's `on_event`."""

    ref: str
    """The caller's reference for outgoing calls; the UA-assigned one ('in-N') for incoming calls."""
    kind: EventKind
    t: float
    """time.monotonic() when the event happened."""
    sip_code: int | None = None
    """SIP status code of the response that caused it (final code on 'disconnected')."""
    reason: str = ""
    """Why: the SIP reason phrase, or ivrgate's own ('ring timeout', 'no RTP', ...)."""
    call_id: str = ""
    """The SIP Call-ID."""
    digit: str = ""
    source: DigitSource = ""
    telephone_event: bool | None = None
    """On 'media': whether telephone-event (RFC 4733) was negotiated."""
    remote_uri: str = ""
