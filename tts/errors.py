"""Errors of the TTS layer, each with its seed status code and status text."""

from __future__ import annotations

from coded.errors import CodedError


class TTSError(CodedError, RuntimeError):
    code: int = 500
    status_text: str = "ERROR: TTS FAILED"


class EngineUnavailable(TTSError):
    """The engine asked for is not installed, cannot start, or (online engines) cannot be reached in time."""

    status_text = "ERROR: TTS ENGINE UNAVAILABLE"
    http_status = 503

    def __init__(self, detail: str = "TTS engine unavailable") -> None:
        super().__init__(detail)


class InvalidText(TTSError):
    """Empty, too long, or not text at all (the seed's 511)."""

    code = 511
    status_text = "INVALID TXT"


class UnsupportedVoice(TTSError):
    status_text = "ERROR: UNSUPPORTED VOICE"


class InvalidTTSSetting(TTSError):
    """A TTS setting outside what the engine accepts (rate, pitch, timeout); a configuration error."""

    status_text = "ERROR: INVALID TTS SETTING"


class UnknownEngine(InvalidTTSSetting):
    """`tts.engine` names no registered engine."""

    status_text = "ERROR: UNKNOWN TTS ENGINE"
