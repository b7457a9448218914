"""The message status table of docs/DESIGN.md ("Message status codes"): every status code and exact
status text a message is stored with, shown by matrix_status, v1 and the GUI. The one place they are
written: ivr, sms, store and api import them from here. The texts are the seed's compatibility contract,
byte for byte; a unit test compares this module with the table in docs/DESIGN.md.

Texts that hold a number are templates in str.format style with the table's own placeholders: N is the
duration in whole seconds, D the key pressed, NNN the SIP response code. This module imports nothing of
ours (coded/__init__.py).
"""

from __future__ import annotations

from typing import Final

Status = tuple[int, str]
"""(STATUSCODE, STATUSTXT)."""

QUEUED: Final[Status] = (100, "Queued")
"""Accepted, not yet attempted (or waiting for a retry)."""
CALLING: Final[Status] = (110, "Calling")
SENT_TO_SMSC: Final[Status] = (110, "Sent to SMSC")
"""submit_sm acknowledged, no final receipt yet."""

ANSWERED: Final = 200
"""The code of an answered call; its text is one of the ANSWERED_* templates."""
ANSWERED_RESPONSE: Final = "Voice call answered, duration {N} seconds. R = {D}"
ANSWERED_NO_RESPONSE: Final = "Voice call answered, duration {N} seconds. No response"
ANSWERED_PLAIN: Final = "Voice call answered, duration {N} seconds."
DELIVERED: Final[Status] = (200, "Delivered")
"""SMS: delivery receipt DELIVRD for every part."""
RECEIVED: Final[Status] = (200, "Received")
"""An incoming (MO) SMS, stored as a message of the virtual number's owner."""
NO_RECEIPT: Final[Status] = (210, "Sent, no receipt")
"""SMS accepted by the SMSC, no final receipt within sms_service.receipt_timeout_s."""

BUSY: Final[Status] = (600, "Busy")
NO_ANSWER: Final[Status] = (601, "No answer")
REJECTED: Final[Status] = (602, "Rejected")
CALL_FAILED: Final = 603
"""The code of a failed call; its text is CALL_FAILED_SIP or one of the CALL_FAILED_* statuses."""
CALL_FAILED_SIP: Final = "Call failed (SIP {NNN})"
CALL_FAILED_NETWORK: Final[Status] = (603, "Call failed (network error)")
"""A failure with no SIP code at all (no route, socket error)."""
CALL_FAILED_ENGINE: Final[Status] = (603, "Call failed (engine)")
"""Our SIP engine process died before the call's result was known (not charged)."""
CALL_FAILED_REGISTRATION: Final[Status] = (603, "Call failed (registration)")
"""Not dialled: the registration with the configured registrar failed or did not complete in time."""
CANCELLED: Final[Status] = (604, "Cancelled")
UNDELIVERABLE: Final[Status] = (605, "Undeliverable")
EXPIRED: Final[Status] = (606, "Expired")
DO_NOT_CALL: Final[Status] = (502, "PIN IN DO NOT CALL DATABASE")
"""The recipient is on a do-not-call list: stored as its own message, the rest of the list goes on."""

TABLE: Final[tuple[Status, ...]] = (
    QUEUED, CALLING, SENT_TO_SMSC,
    (ANSWERED, ANSWERED_RESPONSE), (ANSWERED, ANSWERED_NO_RESPONSE), (ANSWERED, ANSWERED_PLAIN),
    DELIVERED, RECEIVED, NO_RECEIPT,
    BUSY, NO_ANSWER, REJECTED,
    (CALL_FAILED, CALL_FAILED_SIP), CALL_FAILED_NETWORK, CALL_FAILED_ENGINE, CALL_FAILED_REGISTRATION,
    CANCELLED, UNDELIVERABLE, EXPIRED, DO_NOT_CALL,
)
"""Every row of DESIGN.md's table, templates unfilled, in the table's order."""

OK: Final[Status] = (200, "OK")
"""The answer to an accepted request (a queued recipient answers 200 OK); not a stored message status."""

FIRST_FAILURE: Final = 400
"""The seed's rule: codes 0-399 mean success, 400 and up failure."""


def is_success(code: int) -> bool:
    """The seed's rule: 0-399 inclusive mean success, anything else failure."""
    return 0 <= code < FIRST_FAILURE


def answered_text(duration_s: int, *, response_wanted: bool, digit: str | None) -> str:
    """The 200 text of an answered call, e.g. `Voice call answered, duration 18 seconds. R = 1`."""
    if digit is not None:
        return ANSWERED_RESPONSE.format(N=duration_s, D=digit)
    return (ANSWERED_NO_RESPONSE if response_wanted else ANSWERED_PLAIN).format(N=duration_s)


def call_failed_text(sip_code: int | None) -> str:
    """The 603 text: `Call failed (SIP NNN)` whenever a SIP code exists, else the network error's."""
    return CALL_FAILED_NETWORK[1] if sip_code is None else CALL_FAILED_SIP.format(NNN=sip_code)
