"""Call results -> the message status code and exact status text of DESIGN.md's table.

A client sees STATUSCODE and STATUSTXT only; the SIP response code and the Call-ID are kept
beside them in CallOutcome (for the store, the logs and support), never folded into the code.
Duration shown in the text is whole seconds from answer to hang-up, truncated (a stopwatch
reading); billing rounds the exact duration up separately (store.rating.billable_seconds, the one
billing rule).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from ivr.events import NOT_REGISTERED
from ivr.flow import FlowResult

logger = logging.getLogger(__name__)

CODE_QUEUED = 100
TEXT_QUEUED = "Queued"
CODE_CALLING = 110
TEXT_CALLING = "Calling"
CODE_ANSWERED = 200
CODE_BUSY = 600
TEXT_BUSY = "Busy"
CODE_NO_ANSWER = 601
TEXT_NO_ANSWER = "No answer"
CODE_REJECTED = 602
TEXT_REJECTED = "Rejected"
CODE_FAILED = 603
TEXT_NETWORK_ERROR = "Call failed (network error)"
"""A failure with no SIP code at all (no route, socket error)."""
TEXT_REGISTRATION_FAILED = "Call failed (registration)"
"""Not dialled: the registration with the configured registrar failed or did not complete in time."""
TEXT_ENGINE_FAILED = "Call failed (engine)"
"""Our SIP engine process died before the call's result was known (docs/calls.md, 'Engine crash')."""
CODE_CANCELLED = 604
TEXT_CANCELLED = "Cancelled"

BUSY_SIP_CODES = frozenset({486, 600})
NO_ANSWER_SIP_CODES = frozenset({408, 480, 487})
REJECTED_SIP_CODES = frozenset({603})

_SECOND_SLACK = 1e-6
"""Forgives float noise from subtracting clock readings (18.0 computed as 17.9999999)."""


@dataclass(frozen=True)
class CallOutcome:
    """What a finished call attempt is recorded as."""

    code: int
    """The message status code (DESIGN.md's table): 200, 600..604."""
    text: str
    """The exact STATUSTXT."""
    digit: str | None
    """The callee's response (the seed's RESPONSE), or None."""
    duration_s: int
    """Whole seconds from answer to hang-up (0 when not answered)."""
    sip_code: int | None
    """The final SIP response code, when there was one."""
    call_id: str | None
    """The SIP Call-ID, when a dialog was attempted."""
    answered: bool

    @property
    def success(self) -> bool:
        """The seed's rule: codes 0..399 are success."""
        return 0 <= self.code <= 399

    @property
    def charged(self) -> bool:
        """Whether the call is billed by its duration: answered and not failed on our side (a call whose
        engine died before its result was known is not charged)."""
        return self.answered and self.code != CODE_FAILED


def whole_seconds(seconds: float) -> int:
    """A duration as shown to clients: truncated to whole seconds, never negative."""
    if not seconds > 0:
        return 0
    return math.floor(seconds + _SECOND_SLACK)


def answered_text(duration_s: int, *, response_wanted: bool, digit: str | None) -> str:
    """The 200 STATUSTXT of an answered call, e.g. `Voice call answered, duration 18 seconds. R = 1`."""
    head = f"Voice call answered, duration {duration_s} seconds."
    if digit is not None:
        return f"{head} R = {digit}"
    return f"{head} No response" if response_wanted else head


def failed_text(sip_code: int | None) -> str:
    """The 603 STATUSTXT: `Call failed (SIP NNN)` whenever a code exists."""
    return TEXT_NETWORK_ERROR if sip_code is None else f"Call failed (SIP {sip_code})"


def outcome_for(
    *,
    answered: bool,
    flow_result: FlowResult | None,
    sip_code: int | None,
    call_id: str | None,
    cancelled: bool = False,
    response_wanted: bool,
    error: str | None = None,
    engine_failed: bool = False,
) -> CallOutcome:
    """Map how a call attempt ended to its recorded outcome (docs/flow.md, 'Outcomes').

    `cancelled` means an operator or a shutdown stopped the call (our CANCEL for a ring
    timeout is not a cancellation: it is 'No answer'). `error` describes a local failure
    (for the log); it turns an unanswered call without a SIP code into a network error.
    A response already captured wins over everything that happened after it.

    `engine_failed` means the call ended because our engine process died before the flow had finished:
    what happened on the call after that is unknown (a key pressed then was lost with the process), so
    the outcome is `Call failed (engine)` (603, not charged) unless a response was already captured,
    which is kept. A crash after the flow finished passes `engine_failed=False`: nothing was lost.
    """
    was_cancelled = cancelled or (flow_result is not None and flow_result.reason == "cancelled")
    captured = flow_result.digit if flow_result is not None and response_wanted else None
    if engine_failed and not captured and not was_cancelled:
        logger.info("call %s: engine failed before its result was known (%s)", call_id, error)
        return CallOutcome(code=CODE_FAILED, text=TEXT_ENGINE_FAILED, digit=None, duration_s=0,
                           sip_code=sip_code, call_id=call_id, answered=answered)
    if answered:
        code, text, digit, duration = _answered(flow_result, response_wanted, was_cancelled)
    else:
        code, text = _unanswered(sip_code, was_cancelled, error)
        digit, duration = None, 0
    if error:
        logger.info("call %s ended with error %r -> %d %s", call_id, error, code, text)
    return CallOutcome(
        code=code, text=text, digit=digit, duration_s=duration, sip_code=sip_code, call_id=call_id,
        answered=answered,
    )


def _answered(
    flow_result: FlowResult | None, response_wanted: bool, cancelled: bool
) -> tuple[int, str, str | None, int]:
    if flow_result is None:
        logger.warning("answered call without a flow result: duration recorded as 0")
        duration, digit = 0, None
    else:
        duration = whole_seconds(flow_result.duration_s)
        digit = flow_result.digit if response_wanted else None
    if cancelled and digit is None:
        return CODE_CANCELLED, TEXT_CANCELLED, None, duration
    text = answered_text(duration, response_wanted=response_wanted, digit=digit)
    return CODE_ANSWERED, text, digit, duration


def _unanswered(sip_code: int | None, cancelled: bool, error: str | None) -> tuple[int, str]:
    if cancelled:
        return CODE_CANCELLED, TEXT_CANCELLED
    if sip_code is None and error and error.startswith(NOT_REGISTERED):
        return CODE_FAILED, TEXT_REGISTRATION_FAILED
    if sip_code is None:
        return (CODE_FAILED, TEXT_NETWORK_ERROR) if error else (CODE_NO_ANSWER, TEXT_NO_ANSWER)
    if sip_code in BUSY_SIP_CODES:
        return CODE_BUSY, TEXT_BUSY
    if sip_code in NO_ANSWER_SIP_CODES:
        return CODE_NO_ANSWER, TEXT_NO_ANSWER
    if sip_code in REJECTED_SIP_CODES:
        return CODE_REJECTED, TEXT_REJECTED
    return CODE_FAILED, failed_text(sip_code)
