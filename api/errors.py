"""The gateway's errors: one tree whose classes carry the seed's status code and exact status text.

A legacy client sees only STATUSCODE and STATUSTXT, so every refusal the API layer makes is one of these
classes; `detail` says more for the logs and the v1 API. The lower layers (audio, tts, ivr) keep their
own trees with the same two attributes, and `status_of` translates any of them at the edge.

Every answer that carries a STATUSCODE is sent with HTTP 200 (docs/DESIGN.md, "Legacy answers"): that is
true of all of ours. Only an exception that carries no status (a bug) becomes an HTTP 500.
"""

from __future__ import annotations

from typing import Final

HTTP_OK: Final = 200
HTTP_INTERNAL_ERROR: Final = 500

STATUS_OK: Final = (200, "OK")
"""The answer to an accepted request."""


def is_success(code: int) -> bool:
    """The seed's rule: 0-399 inclusive mean success, anything else failure."""
    return 0 <= code <= 399


class GatewayError(Exception):
    """Any refusal of the gateway; the seed's generic 500 ERROR."""

    code: int = 500
    status_text: str = "ERROR"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.status_text)
        self.detail = detail or self.status_text


class StartupFailed(GatewayError):
    """A setting that cannot work, found at start-up (a port already taken, a missing file): one line that
    names the setting, and the command exits non-zero with nothing left running."""

    status_text = "ERROR: INVALID SETTINGS"

    @classmethod
    def port_taken(cls, setting: str, host: str, port: int, kind: str, exc: OSError | str) -> StartupFailed:
        """The one-line refusal of a listener that cannot be bound: `smtp.port: 127.0.0.1:25 (TCP): ...`."""
        why = exc if isinstance(exc, str) else (exc.strerror or str(exc))
        return cls(f"{setting}: {host}:{port} ({kind.upper()}): {why}")


class AccountNotFound(GatewayError):
    """404: the account a request acts for does not exist (e.g. a sub-user whose parent account is gone).

    A wrong username or password is 505, never 404, so an answer does not reveal which usernames exist."""

    code = 404
    status_text = "ACCOUNT OR USER DOES NOT EXIST"


class MessageNotFound(GatewayError):
    """An unknown, malformed or foreign message ID (matrix_status)."""

    status_text = "ERROR: MESSAGE NOT FOUND"


class VoiceFileTooLarge(GatewayError):
    """An upload over the size limit (matrix_voice)."""

    status_text = "ERROR: VOICE FILE TOO LARGE"


class InvalidCallerId(GatewayError):
    """A callerid that is neither a possible number nor (SMS only) an alphanumeric sender ID."""

    status_text = "ERROR: INVALID CALLERID"


class GroupNotFound(GatewayError):
    """matrix's `group` names no group of the account, or an empty one."""

    status_text = "ERROR: GROUP NOT FOUND"


class InvalidTrunkTemplate(GatewayError):
    """The trunk URI template or host setting cannot produce a SIP URI (a configuration error)."""

    status_text = "ERROR: INVALID TRUNK SETTINGS"


class SmsNotConfigured(GatewayError):
    """An SMS submission to a deployment without an SMSC (`sms.system_id` unset): refused at once rather
    than queued, with money held, for a message that could never go (docs/sms.md)."""

    status_text = "ERROR: SMS NOT CONFIGURED"


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


class InsufficientBalance(GatewayError):
    """503: the balance cannot cover the reservation of the request."""

    code = 503
    status_text = "INSUFFICIENT BALANCE"


class SpendingLimitReached(InsufficientBalance):
    """503 too: a sub-user's spending limit would be passed (the client cannot tell it from the balance)."""


class DatabaseError(GatewayError):
    """504: reading the store failed (a query for status, balance, rate or account)."""

    code = 504
    status_text = "DATABASE ERROR"


class DatabaseWriteError(DatabaseError):
    """507: writing the store failed; the transaction was rolled back, nothing was half-written."""

    code = 507


class DatabaseUnavailable(DatabaseError):
    """508: the store could not be reached or timed out (connection refused, pool exhausted, locked)."""

    code = 508


class WrongCredentials(GatewayError):
    """505: no user has this username, or the password is wrong (deliberately the same answer)."""

    code = 505
    status_text = "USER NOT FOUND OR WRONG PASSWORD"


class AccountNotActive(GatewayError):
    """506: the credentials are right but the account (or its parent) is disabled."""

    code = 506
    status_text = "ACCOUNT NOT ACTIVE"


class InvalidUsername(GatewayError):
    """510: `username` missing, empty, too long or holding whitespace or control characters."""

    code = 510
    status_text = "INVALID USERNAME"


class InvalidTxt(GatewayError):
    """511: `txt` missing, empty, too long, or holding control characters other than tab and line breaks."""

    code = 511
    status_text = "INVALID TXT"


class InvalidPassword(GatewayError):
    """512: `password` missing, empty or too long."""

    code = 512
    status_text = "INVALID PASSWORD"


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
    """The legacy (STATUSCODE, STATUSTXT) of any ivrgate exception, or None when it carries none.

    Any layer's error qualifies (audio.errors, tts.errors, ivr.errors, ivr.flow, this module): they all
    carry an int `code` and a str `status_text`. None means a bug, which the front answers with HTTP 500.
    """
    code = getattr(exc, "code", None)
    text = getattr(exc, "status_text", None)
    if isinstance(code, bool) or not isinstance(code, int) or not isinstance(text, str):
        return None
    if not 0 <= code <= 999 or not text:
        return None
    return code, text


def http_status_of(exc: BaseException) -> int:
    """The HTTP status a front answers `exc` with: 200 whenever the body carries a STATUSCODE, else 500."""
    return HTTP_OK if status_of(exc) is not None else HTTP_INTERNAL_ERROR
