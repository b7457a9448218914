"""The gateway's errors: the API layer's tree, whose classes carry the seed's status code, exact status
text and v1 HTTP status as class attributes (coded.errors.CodedError, the root of every layer's tree).

A legacy client sees only STATUSCODE and STATUSTXT, so every refusal the API layer makes is one of these
classes or a lower layer's (the account and message refusals are store.errors', raised by both);
`detail` says more for the logs and the v1 API.

Every answer that carries a STATUSCODE is sent with HTTP 200 (docs/DESIGN.md, "Legacy answers"): that is
true of every CodedError. Only an exception that is not one (a bug) becomes an HTTP 500.
"""

from __future__ import annotations

from typing import Final

from coded.errors import CodedError
from store.errors import InsufficientBalance

HTTP_OK: Final = 200
HTTP_INTERNAL_ERROR: Final = 500


class GatewayError(CodedError):
    """Any refusal of the API layer; the seed's generic 500 ERROR."""


class StartupFailed(GatewayError):
    """A setting that cannot work, found at start-up (a port already taken, a missing file): one line that
    names the setting, and the command exits non-zero with nothing left running."""

    status_text = "ERROR: INVALID SETTINGS"

    @classmethod
    def port_taken(cls, setting: str, host: str, port: int, kind: str, exc: OSError | str) -> StartupFailed:
        """The one-line refusal of a listener that cannot be bound: `smtp.port: 127.0.0.1:25 (TCP): ...`."""
        why = exc if isinstance(exc, str) else (exc.strerror or str(exc))
        return cls(f"{setting}: {host}:{port} ({kind.upper()}): {why}")


class VoiceFileTooLarge(GatewayError):
    """An upload over the size limit (matrix_voice)."""

    status_text = "ERROR: VOICE FILE TOO LARGE"
    http_status = 413


class InvalidCallerId(GatewayError):
    """A callerid that is neither a possible number nor (SMS only) an alphanumeric sender ID."""

    status_text = "ERROR: INVALID CALLERID"


class GroupNotFound(GatewayError):
    """matrix's `group` names no group of the account, or an empty one."""

    status_text = "ERROR: GROUP NOT FOUND"
    http_status = 404


class InvalidTrunkTemplate(GatewayError):
    """The trunk URI template or host setting cannot produce a SIP URI (a configuration error)."""

    status_text = "ERROR: INVALID TRUNK SETTINGS"


class SmsNotConfigured(GatewayError):
    """An SMS submission to a deployment without an SMSC (`sms.system_id` unset): refused at once rather
    than queued, with money held, for a message that could never go (docs/sms.md)."""

    status_text = "ERROR: SMS NOT CONFIGURED"
    http_status = 503


class InvalidParameter(GatewayError):
    """An optional parameter with a value outside its set (repeat, response, language, gender, tts, type).

    The seed has no code for these; the text names the parameter: `ERROR: INVALID REPEAT`."""

    def __init__(self, field: str, detail: str = "") -> None:
        self.field = field
        self.status_text = f"ERROR: INVALID {field.upper()}"
        super().__init__(detail or f"invalid {field}")


class DoNotCall(GatewayError):
    """502: the recipient is on a do-not-call list (stored as its own message; the rest go on)."""

    code = 502
    status_text = "PIN IN DO NOT CALL DATABASE"
    http_status = 409


class SpendingLimitReached(InsufficientBalance):
    """503 too: a sub-user's spending limit would be passed (the client cannot tell it from the balance)."""


class InvalidTxt(GatewayError):
    """511: `txt` missing, empty, too long, or holding control characters other than tab and line breaks."""

    code = 511
    status_text = "INVALID TXT"


class InvalidPin(GatewayError):
    """513: a recipient (the seed's PIN) is missing or not a possible phone number."""

    code = 513
    status_text = "INVALID PIN"


class TooManyRecipients(InvalidPin):
    """513 too: more recipients in one request than the limit."""


class NoVoiceFile(GatewayError):
    """514: matrix_voice without a (non-empty) `voicefile`, or matrix_voicew without `voiceurl`."""

    code = 514
    status_text = "NO VOICE FILE PROVIDED"


class ParseError(GatewayError):
    """520: a body that is not the JSON (or XML) it should be; the seed's text says XML for all of them."""

    code = 520
    status_text = "ERROR PARSING XML"


def status_of(exc: BaseException) -> tuple[int, str] | None:
    """The legacy (STATUSCODE, STATUSTXT) of any layer's coded error, or None for anything else (a bug,
    which the front answers with HTTP 500)."""
    return exc.status if isinstance(exc, CodedError) else None


def http_status_of(exc: BaseException) -> int:
    """The HTTP status of a legacy answer to `exc`: 200 whenever the body carries a STATUSCODE, else 500."""
    return HTTP_OK if isinstance(exc, CodedError) else HTTP_INTERNAL_ERROR
