"""Errors of the IVR layer (prompt rendering and URL fetching), each with its seed status code and text."""

from __future__ import annotations

from coded.errors import CodedError


class IvrError(CodedError, RuntimeError):
    code: int = 500
    status_text: str = "ERROR"


class FetchError(IvrError):
    """A voice URL that cannot be used: refused, unreachable, not audio, too big or too slow."""

    status_text = "ERROR: VOICE URL FAILED"


class UrlRefused(FetchError):
    status_text = "ERROR: VOICE URL REFUSED"


class FetchTimeout(FetchError):
    status_text = "ERROR: VOICE URL TIMED OUT"


class FetchHttpError(FetchError):
    status_text = "ERROR: VOICE URL NOT FOUND"


class TooManyRedirects(FetchError):
    status_text = "ERROR: VOICE URL REDIRECTS TOO OFTEN"


class NotAudio(FetchError):
    status_text = "ERROR: VOICE URL IS NOT AUDIO"


class FetchTooLarge(FetchError):
    status_text = "ERROR: VOICE FILE TOO LARGE"
    http_status = 413


class InvalidPromptSpec(IvrError):
    code = 520
    status_text = "ERROR PARSING XML"


class PromptTooLong(IvrError):
    """A prompt over prompt.max_seconds, known from its texts before rendering or from its assembled audio."""

    status_text = "ERROR: PROMPT TOO LONG"


class ListenThrottled(IvrError):
    """More Listen renders than prompt.listen_per_minute allows one user."""

    status_text = "ERROR: TOO MANY LISTEN REQUESTS"


class CampaignRuleError(IvrError):
    """A campaign rule that cannot be used: calling-window rules (ivr.windows) or a message template with
    merge fields (ivr.merge). Those modules subclass it with their own status texts."""

    status_text = "ERROR: INVALID CAMPAIGN RULE"


class InvalidScript(IvrError):
    """An IVR script refused by `ivr.script.parse_script`; `path` is a JSON-pointer-like path to the field
    (e.g. `/steps/2/branch/1`) and `step` the id of the step at fault (None for script-wide faults)."""

    status_text = "ERROR: INVALID IVR SCRIPT"

    def __init__(self, detail: str, *, path: str = "", step: str | None = None) -> None:
        super().__init__(f"{path}: {detail}" if path else detail)
        self.path = path
        self.step = step
