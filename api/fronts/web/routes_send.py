"""Send: the forms for SMS, TTS, voice upload, voice URL and voice+TTS segments, and Listen.

Every form calls the same api.core.service submission as the legacy and v1 APIs (validation, do-not-call,
pricing and the reservation happen there). Listen renders the prompt exactly as the worker will (same
renderer, same settings, same cache) and answers the WAV, so what the browser plays is what is dialled.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from api.core import manage
from api.core.errors import InvalidParameter, NoVoiceFile, VoiceFileTooLarge
from api.core.jobs import Submitted
from api.core.service import Gateway
from api.fronts.web.core import PREFIX, Posted, User, WebContext, WebRoute, check_csrf
from coded.statuses import QUEUED
from ivr.dialer import RateLimiter
from ivr.errors import ListenThrottled
from ivr.fetch import UrlFetcher
from ivr.prompt import (
    AudioSegment,
    PromptRenderer,
    PromptSpec,
    Segment,
    TextSegment,
    UrlSegment,
    make_voice,
    segment_from_item,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/send", route_class=WebRoute)

KINDS = {"sms": "SMS", "tts": "Text to speech", "voice": "Voice file", "url": "Voice URL",
         "vtts": "Voice + TTS"}
Text = Annotated[str, Form()]
Flag = Annotated[bool, Form()]
T = TypeVar("T")


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidParameter("kind", f"kind must be one of {', '.join(KINDS)}")
    return kind


@router.get("")
def send_form(ctx: User, kind: str = "tts") -> Response:
    with ctx.read() as session:
        groups = [group.name for group, count in manage.list_groups(session, ctx.user) if count]
    settings = ctx.gateway.settings.forms
    return ctx.render("send.html", kind=_kind(kind), kinds=KINDS, groups=groups,
                      max_repeat=settings.max_repeat, max_tts=settings.max_tts_chars,
                      max_sms=settings.max_sms_chars)


def _done(ctx: WebContext, submitted: list[Submitted]) -> Response:
    queued = sum(1 for s in submitted if s.code == QUEUED[0])
    refused = [f"{s.phone}: {s.text}" for s in submitted if s.code != QUEUED[0]]
    text = f"{queued} message{'s' if queued != 1 else ''} queued."
    if refused:
        text += " Refused: " + "; ".join(refused[:5]) + (" ..." if len(refused) > 5 else "")
    return ctx.redirect(f"{PREFIX}/history", "error" if refused and not queued else "ok", text)


@router.post("/sms")
def send_sms(ctx: Posted, phones: Text = "", group: Text = "", text: Text = "", callerid: Text = "",
             tts_fallback: Flag = False) -> Response:
    submitted = ctx.gateway.submit_sms(ctx.user, phones=phones, group=group or None, text=text,
                                       callerid=callerid, tts_fallback=tts_fallback)
    return _done(ctx, submitted)


@router.post("/tts")
def send_tts(ctx: Posted, phones: Text = "", group: Text = "", text: Text = "", callerid: Text = "",
             language: Text = "us", gender: Text = "female", repeat: Annotated[int, Form()] = 0,
             response: Flag = False) -> Response:
    submitted = ctx.gateway.submit_tts(ctx.user, phones=phones, group=group or None, text=text,
                                       language=language, gender=gender, repeat=repeat, response=response,
                                       callerid=callerid)
    return _done(ctx, submitted)


async def _upload(gateway: Gateway, upload: UploadFile | None) -> tuple[bytes, str]:
    if upload is None or not upload.filename:
        raise NoVoiceFile("choose a voice file")
    limit = gateway.settings.forms.max_voice_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise VoiceFileTooLarge(f"{upload.filename[:60]}: more than {limit} bytes")
    return data, upload.filename


@router.post("/voice")
async def send_voice(ctx: Posted, voicefile: Annotated[UploadFile | None, File()] = None,
                     phones: Text = "", group: Text = "", callerid: Text = "",
                     repeat: Annotated[int, Form()] = 0, response: Flag = False) -> Response:
    data, name = await _upload(ctx.gateway, voicefile)
    submitted = await _in_thread(lambda: ctx.gateway.submit_voice(
        ctx.user, phones=phones, group=group or None, audio=data, filename=name, repeat=repeat,
        response=response, callerid=callerid))
    return _done(ctx, submitted)


@router.post("/url")
def send_url(ctx: Posted, voiceurl: Text = "", phones: Text = "", group: Text = "", callerid: Text = "",
             repeat: Annotated[int, Form()] = 0, response: Flag = False) -> Response:
    submitted = ctx.gateway.submit_voice_url(ctx.user, phones=phones, group=group or None, url=voiceurl,
                                             repeat=repeat, response=response, callerid=callerid)
    return _done(ctx, submitted)


def segments_spec(segments: str, language: str, gender: str) -> PromptSpec:
    """The vtts form's segments: one a line, an http(s) URL is fetched, any other line is spoken."""
    lines = [line.strip() for line in segments.splitlines() if line.strip()]
    if not lines:
        raise InvalidParameter("segments", "write at least one text or URL line")
    items: list[Segment] = [segment_from_item(line, i) for i, line in enumerate(lines)]
    return PromptSpec(tuple(items), make_voice(language, gender))


@router.post("/vtts")
def send_vtts(ctx: Posted, segments: Text = "", phones: Text = "", group: Text = "", callerid: Text = "",
              language: Text = "us", gender: Text = "female", repeat: Annotated[int, Form()] = 0,
              response: Flag = False) -> Response:
    spec = segments_spec(segments, language, gender)
    submitted = ctx.gateway.submit_vtts(ctx.user, phones=phones, group=group or None, spec=spec,
                                        repeat=repeat, response=response, callerid=callerid)
    return _done(ctx, submitted)


# --- Listen ---------------------------------------------------------------------------------------------


def renderer(request: Request, gateway: Gateway) -> PromptRenderer:
    """The app's prompt renderer (the worker's cache directory and settings), built on first use."""
    found = getattr(request.app.state, "web_renderer", None)
    if isinstance(found, PromptRenderer):
        return found
    s = gateway.settings
    built = PromptRenderer(s.cache_dir, fetcher=UrlFetcher(s.fetch), decode_limits=s.decode,
                           telephony=s.telephony, assemble_settings=s.assemble, tts=s.tts, prompt=s.prompt)
    request.app.state.web_renderer = built
    return built


class ListenLimits:
    """A token bucket per user (ivr.dialer.RateLimiter, the dialer's own rule) for Listen renders; it
    forgets the least recently seen users past MAX_USERS. Pure: time is an argument."""

    MAX_USERS = 10_000

    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate, self.burst = per_minute / 60.0, burst
        self._buckets: OrderedDict[int, RateLimiter] = OrderedDict()

    def check(self, user_id: int, now: float) -> None:
        """Take one render from `user_id`'s bucket, or raise ListenThrottled (with the wait)."""
        bucket = self._buckets.pop(user_id, None) or RateLimiter(self.rate, self.burst)
        self._buckets[user_id] = bucket
        if len(self._buckets) > self.MAX_USERS:
            self._buckets.popitem(last=False)
        wait = bucket.delay(now)
        if wait > 0:
            raise ListenThrottled(f"try again in {math.ceil(wait)} s")


def listen_limits(request: Request, gateway: Gateway) -> ListenLimits:
    """The app's Listen limiter, built on first use."""
    found = getattr(request.app.state, "listen_limits", None)
    if isinstance(found, ListenLimits):
        return found
    settings = gateway.settings.prompt
    built = ListenLimits(settings.listen_per_minute, settings.listen_burst)
    request.app.state.listen_limits = built
    return built


def _throttle_listen(ctx: WebContext) -> None:
    listen_limits(ctx.request, ctx.gateway).check(ctx.user.user_id, time.monotonic())


def listen_spec(kind: str, text: str, language: str, gender: str, url: str, segments: str) -> PromptSpec:
    """What a Listen button asks to hear, as a prompt spec."""
    if kind in ("tts", "sms"):
        if not text.strip():
            raise InvalidParameter("text", "write the text to speak first")
        return PromptSpec((TextSegment(text.strip()),), make_voice(language, gender))
    if kind == "url":
        if not url.strip():
            raise InvalidParameter("voiceurl", "give the voice URL first")
        return PromptSpec((UrlSegment(url.strip()),))
    if kind == "vtts":
        return segments_spec(segments, language, gender)
    raise InvalidParameter("kind", "Listen works for tts, url and vtts (upload: POST a file)")


def _wav(path: Path) -> Response:
    return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "private, max-age=300"})


@router.get("/listen")
def listen(ctx: User, kind: str = "tts", text: str = "", language: str = "us", gender: str = "female",
           voiceurl: str = "", segments: str = "") -> Response:
    """The rendered prompt as 16-bit 8 kHz mono WAV, for the <audio> element of the send form."""
    spec = listen_spec(kind, text, language, gender, voiceurl, segments)
    _throttle_listen(ctx)
    return _wav(renderer(ctx.request, ctx.gateway).render(spec).path)


@router.post("/listen")
async def listen_upload(ctx: User, voicefile: Annotated[UploadFile | None, File()] = None) -> Response:
    """An uploaded file rendered for the telephone (the form's JavaScript sends X-CSRF-Token)."""
    await check_csrf(ctx)
    _throttle_listen(ctx)
    data, name = await _upload(ctx.gateway, voicefile)
    spec = PromptSpec((AudioSegment(data=data, name=name),))
    rendered = await _in_thread(lambda: renderer(ctx.request, ctx.gateway).render(spec))
    return _wav(rendered.path)


async def _in_thread(work: Callable[[], T]) -> T:
    """Blocking work (decoding, rendering, the store) off the event loop."""
    return await run_in_threadpool(work)
