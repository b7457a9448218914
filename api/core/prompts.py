"""A claimed voice message -> the prompt to render and the call's options: the pure half of the worker.

    message = ClaimedMessage.of(row)                          # copied out of the claiming transaction
    spec = prompt_spec(message, lambda digest: blobs.get_blob(session, digest))
    response, repeat = call_options(message)

The service stores each message's job as a `settings` JSON (text, language, gender, segments, blob
digests, response, repeat) and its uploaded audio as content-addressed blobs; any worker on any node
rebuilds the same prompt from them, so nothing of a job lives only in the memory of the node that took
it. Nothing here touches the database, the network or the clock: blobs come through `load_blob`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from api.core.errors import GatewayError
from ivr.prompt import AudioSegment, PromptSpec, Segment, TextSegment, make_voice
from store.models import Message
from tts.base import Voice

__all__ = ["ClaimedMessage", "PromptUnavailable", "call_options", "prompt_spec"]


class PromptUnavailable(GatewayError):
    """A queued message whose prompt cannot be rebuilt (its audio blob is gone, its settings are bad)."""

    status_text = "ERROR: PROMPT UNAVAILABLE"


@dataclass(frozen=True)
class ClaimedMessage:
    """The columns of a claimed message the worker needs, copied out of the claiming transaction."""

    id: str
    kind: str
    phone: str
    callerid: str
    body: str
    settings: Mapping[str, Any]
    prompt_blob: str | None
    attempts: int
    created_at: dt.datetime

    @classmethod
    def of(cls, message: Message) -> ClaimedMessage:
        return cls(id=message.id, kind=message.kind, phone=message.phone, callerid=message.callerid or "",
                   body=message.body or "", settings=dict(message.settings or {}),
                   prompt_blob=message.prompt_blob, attempts=message.attempts, created_at=message.created_at)


def prompt_spec(message: ClaimedMessage, load_blob: Callable[[str], bytes | None]) -> PromptSpec:
    """Rebuild a message's prompt from its settings JSON (the service contract) and its stored blobs:
    tts {"text", "language", "gender"}; voice {"blob"}; vtts {"segments": [{"text"[, "language", "gender"]}
    | {"blob"}], "language", "gender"}."""
    settings = message.settings
    voice = make_voice(settings.get("language"), settings.get("gender"))
    if message.kind == "tts":
        text = settings.get("text") or message.body
        if not isinstance(text, str) or not text.strip():
            raise PromptUnavailable(f"message {message.id} has no text to speak")
        return PromptSpec((TextSegment(text),), voice)
    if message.kind in ("voice", "voicew"):
        digest = settings.get("blob") or message.prompt_blob
        return PromptSpec((_blob_segment(digest, load_blob, 0),), voice)
    if message.kind == "vtts":
        items = settings.get("segments")
        if not isinstance(items, list) or not items:
            raise PromptUnavailable(f"message {message.id} has no segments")
        return PromptSpec(tuple(_segment(item, load_blob, i, voice) for i, item in enumerate(items)), voice)
    raise PromptUnavailable(f"message {message.id}: {message.kind!r} is not a voice kind")


def _segment(item: object, load_blob: Callable[[str], bytes | None], index: int, voice: Voice) -> Segment:
    if isinstance(item, Mapping) and isinstance(item.get("text"), str):
        own = "language" in item or "gender" in item
        segment_voice = make_voice(item.get("language"), item.get("gender"), voice) if own else None
        return TextSegment(item["text"], segment_voice)
    if isinstance(item, Mapping) and "blob" in item:
        return _blob_segment(item["blob"], load_blob, index)
    raise PromptUnavailable(f"segment {index} is neither text nor blob: {item!r:.80}")


def _blob_segment(digest: object, load_blob: Callable[[str], bytes | None], index: int) -> AudioSegment:
    data = load_blob(digest) if isinstance(digest, str) and digest else None
    if data is None:
        raise PromptUnavailable(f"segment {index}: audio blob {digest!r:.70} is not in the store")
    return AudioSegment(data=data, name=f"blob {digest}")


def call_options(message: ClaimedMessage) -> tuple[bool, int]:
    """(response, repeat) from the message's settings: the seed's `response` (0|1) and `repeat`."""
    settings = message.settings
    response = str(settings.get("response", 0)).strip().lower() in ("1", "true")
    try:
        repeat = int(settings.get("repeat", 0) or 0)
    except (TypeError, ValueError):
        raise PromptUnavailable(f"message {message.id}: bad repeat {settings.get('repeat')!r:.20}") from None
    return response, repeat
