"""Errors of the audio layer. Each carries the seed status code and the status text a front answers with."""

from __future__ import annotations

from coded.errors import CodedError


class AudioError(CodedError, ValueError):
    """Audio that cannot be used as (part of) a prompt."""

    code: int = 500
    status_text: str = "ERROR: INVALID AUDIO"


class UnsupportedFormat(AudioError):
    status_text = "ERROR: UNSUPPORTED AUDIO FORMAT"

    def __init__(self, detail: str = "unsupported audio format") -> None:
        super().__init__(detail)


class CorruptAudio(AudioError):
    status_text = "ERROR: CORRUPT AUDIO FILE"


class EmptyAudio(AudioError):
    code = 514
    status_text = "NO VOICE FILE PROVIDED"


class AudioTooLarge(AudioError):
    status_text = "ERROR: VOICE FILE TOO LARGE"
    http_status = 413


class AudioTooLong(AudioError):
    status_text = "ERROR: VOICE FILE TOO LONG"
