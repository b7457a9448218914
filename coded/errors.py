"""The root of every ivrgate error that answers a client: `CodedError`.

Each layer keeps its own tree (audio.errors, tts.errors, ivr.errors, sms.errors, store.errors,
api.core.errors) whose root subclasses CodedError, and every class states three facts as class attributes:

    code         the seed status code a legacy client reads in STATUSCODE (e.g. 503)
    status_text  the seed's exact STATUSTXT (e.g. "INSUFFICIENT BALANCE")
    http_status  the HTTP status of the JSON API's (v1) answer (e.g. 402); the legacy routes answer
                 HTTP 200 for every coded error, as the seed does

Fronts match `isinstance(exc, CodedError)`; anything else is a bug (HTTP 500, the traceback in the log).
The HTTP status is the class's, never looked up from the text, so rewording a text cannot change it.
This module imports nothing of ours (coded/__init__.py).
"""

from __future__ import annotations

from typing import Final

HTTP_UNPROCESSABLE: Final = 422
"""v1's answer to a refusal of the request's content, the default of every coded error."""


class CodedError(Exception):
    """Any refusal with a seed status: the seed's generic 500 `ERROR`, HTTP 422 under v1.

    `detail` says more than the status text, for the logs, the CLI and v1's `detail` field."""

    code: int = 500
    status_text: str = "ERROR"
    http_status: int = HTTP_UNPROCESSABLE

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.status_text)
        self.detail = detail or self.status_text

    @property
    def status(self) -> tuple[int, str]:
        """(STATUSCODE, STATUSTXT) as the legacy answer shows them."""
        return self.code, self.status_text
