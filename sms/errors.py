"""Errors of the SMS layer, each with its seed status code and status text."""

from __future__ import annotations

from coded.errors import CodedError


class SmsError(CodedError, RuntimeError):
    code: int = 500
    status_text: str = "ERROR: SMS FAILED"


class TooManyParts(SmsError):
    """The text needs more concatenated parts than the configured cap (the seed's 511)."""

    code = 511
    status_text = "INVALID TXT"


class PduError(SmsError):
    """Bytes from the SMSC that are not a well-formed SMPP PDU; the connection is dropped and rebuilt."""

    status_text = "ERROR: SMPP PROTOCOL"


class BindFailed(SmsError):
    """The SMSC refused the bind (wrong system_id/password, or bound too often)."""

    status_text = "ERROR: SMSC BIND FAILED"


class EsmeStopped(SmsError):
    """A part was submitted to an ESME that is stopping or stopped."""

    status_text = "ERROR: SMSC LINK STOPPED"
