"""Call results -> the message status code and exact status text of DESIGN.md's table (coded.statuses).

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

from coded import statuses
from coded.statuses import Status, answered_text, call_failed_text, is_success
from ivr.events import NOT_REGISTERED
from ivr.flow import FlowResult

logger = logging.getLogger(__name__)

BUSY_SIP_CODES = frozenset({486, 600})
NO_ANSWER_SIP_CODES = frozenset({408, 480, 487})
REJECTED_SIP_CODES = frozenset({603})

_SECOND_SLACK = 1e-6
"""Forgives float noise from subtracting clock readings (18.0 computed as 17.9999999)."""


@dataclass(frozen=True)
class CallOutcome:
    """What a finished call attempt is recorded as."""

    code: int
    """The message status code (DESIGN.md's table, coded.statuses): 200, 600..604."""
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
        return is_success(self.code)

    @property
    def charged(self) -> bool:
        """Whether the call is billed by its duration: answered and not failed on our side (a call whose
        engine died before its result was known is not charged)."""
        return self.answered and self.code != statuses.CALL_FAILED


def whole_seconds(seconds: float) -> int:
    """A duration as shown to clients: truncated to whole seconds, never negative."""
    if not seconds > 0:
        return 0
    return math.floor(seconds + _SECOND_SLACK)


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
        code, text = statuses.CALL_FAILED_ENGINE
        return CallOutcome(code=code, text=text, digit=None, duration_s=0,
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
        return *statuses.CANCELLED, None, duration
    text = answered_text(duration, response_wanted=response_wanted, digit=digit)
    return statuses.ANSWERED, text, digit, duration


def _unanswered(sip_code: int | None, cancelled: bool, error: str | None) -> Status:
    if cancelled:
        return statuses.CANCELLED
    if sip_code is None and error and error.startswith(NOT_REGISTERED):
        return statuses.CALL_FAILED_REGISTRATION
    if sip_code is None:
        return statuses.CALL_FAILED_NETWORK if error else statuses.NO_ANSWER
    if sip_code in BUSY_SIP_CODES:
        return statuses.BUSY
    if sip_code in NO_ANSWER_SIP_CODES:
        return statuses.NO_ANSWER
    if sip_code in REJECTED_SIP_CODES:
        return statuses.REJECTED
    return statuses.CALL_FAILED, call_failed_text(sip_code)

