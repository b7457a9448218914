"""/v1/messages: submit (JSON or multipart voice upload), list with filters, read one, cancel."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Header, Query, Response, UploadFile, status

from api.core import manage
from api.core.errors import InvalidParameter, NoVoiceFile, VoiceFileTooLarge
from api.core.idempotency import Replayed, check_key, request_hash
from api.core.jobs import Caller, Claim, Job, Submitted
from api.core.phones import parse_phone
from api.core.service import Gateway
from api.fronts.v1.deps import CallerDep, GatewayDep, StoreDep
from api.fronts.v1.problems import V1Route
from api.fronts.v1.schemas import (
    MessageCreate,
    MessageDetail,
    MessagePage,
    MessagePublic,
    RowId,
    SmsCreate,
    SubmissionPublic,
    SubmittedPublic,
    TextItem,
    TtsCreate,
    UrlItem,
    VoiceCreate,
    message_detail,
    message_public,
)
from ivr.prompt import PromptSpec, Segment, TextSegment, UrlSegment, make_voice, segment_from_item

router = APIRouter(prefix="/messages", tags=["messages"], route_class=V1Route)


def _answer(submitted: list[Submitted]) -> SubmissionPublic:
    return SubmissionPublic(
        messages=[
            SubmittedPublic(id=s.message_id, phone=s.phone, code=s.code, status=s.text) for s in submitted
        ]
    )


def _phones(to: list[str] | None) -> str | None:
    return ",".join(to) if to else None


def _segment(item: str | TextItem | UrlItem, index: int) -> Segment:
    if isinstance(item, TextItem):
        return TextSegment(item.text.strip())
    if isinstance(item, UrlItem):
        return UrlSegment(item.url.strip())
    return segment_from_item(item, index)


def _audio(gateway: Gateway, encoded: str) -> bytes:
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameter("audio_base64", "audio_base64 is not base64") from None
    if len(data) > gateway.settings.forms.max_voice_bytes:
        raise VoiceFileTooLarge(f"{len(data)} bytes, limit {gateway.settings.forms.max_voice_bytes}")
    return data


def _voice_job(gateway: Gateway, caller: Caller, body: VoiceCreate) -> Job:
    if body.audio_url and body.audio_base64:
        raise InvalidParameter("audio", "give audio_url or audio_base64, not both")
    phones = _phones(body.to)
    if body.audio_url:
        return gateway.voice_url_job(
            caller,
            phones=phones,
            group=body.group,
            url=body.audio_url,
            response=body.response,
            repeat=body.repeat,
            callerid=body.callerid,
            callback_url=body.callback_url,
        )
    if not body.audio_base64:
        raise NoVoiceFile("give audio_url or audio_base64")
    return gateway.voice_job(
        caller,
        phones=phones,
        group=body.group,
        audio=_audio(gateway, body.audio_base64),
        filename=body.filename,
        response=body.response,
        repeat=body.repeat,
        callerid=body.callerid,
        callback_url=body.callback_url,
    )


def job_of(gateway: Gateway, caller: Caller, body: MessageCreate) -> Job:
    """The gateway's job of a v1 submission (its matching *_job call)."""
    if isinstance(body, SmsCreate):
        return gateway.sms_job(
            caller,
            phones=_phones(body.to),
            group=body.group,
            text=body.text,
            callerid=body.callerid,
            tts_fallback=body.tts_fallback,
            callback_url=body.callback_url,
        )
    if isinstance(body, TtsCreate):
        return gateway.tts_job(
            caller,
            phones=_phones(body.to),
            group=body.group,
            text=body.text,
            language=body.language,
            gender=body.gender,
            repeat=body.repeat,
            response=body.response,
            callerid=body.callerid,
            callback_url=body.callback_url,
        )
    if isinstance(body, VoiceCreate):
        return _voice_job(gateway, caller, body)
    spec = PromptSpec(
        tuple(_segment(item, i) for i, item in enumerate(body.segments)),
        make_voice(body.language, body.gender),
    )
    return gateway.vtts_job(
        caller,
        phones=_phones(body.to),
        group=body.group,
        spec=spec,
        response=body.response,
        repeat=body.repeat,
        callerid=body.callerid,
        callback_url=body.callback_url,
    )


IdempotencyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Any unique string (1-255 printable ASCII), e.g. a UUID: a retry with the same key "
        "and body gets the first answer (Idempotent-Replayed: true) and writes nothing; the same key "
        "with another body is 409. Kept 24 h.",
    ),
]


def _idempotent(
    response: Response,
    gateway: Gateway,
    caller: Caller,
    key: str | None,
    fields: dict[str, Any],
    build: Callable[[], Job],
) -> SubmissionPublic:
    """Submit the job `build` makes, at most once per idempotency `key` (api.core.idempotency)."""
    if key is None:
        return _answer(gateway.submit(build()))
    claim = Claim(check_key(key), request_hash(str(fields.pop("route")), fields))
    submitted: list[Submitted] | None = gateway.replay(caller, claim)
    if submitted is None:
        job = build()
        job.idempotency = claim
        submitted = gateway.submit(job)
    if isinstance(submitted, Replayed):
        response.headers["Idempotent-Replayed"] = "true"
    return _answer(submitted)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=SubmissionPublic)
def create_message(
    body: MessageCreate,
    gateway: GatewayDep,
    caller: CallerDep,
    response: Response,
    idempotency_key: IdempotencyHeader = None,
) -> SubmissionPublic:
    """Submit an SMS, TTS, voice or vtts job: one message per recipient, each with its own ID and code
    (100 Queued, or 502 for a number on a do-not-call list)."""
    fields = {"route": "v1/messages", "body": body.model_dump(mode="json")}
    return _idempotent(response, gateway, caller, idempotency_key, fields,
                       lambda: job_of(gateway, caller, body))


@router.post("/voice", status_code=status.HTTP_202_ACCEPTED, response_model=SubmissionPublic)
def create_voice_upload(
    gateway: GatewayDep,
    caller: CallerDep,
    response: Response,
    file: Annotated[UploadFile, File(description="WAV, MP3, FLAC, OGG or M4A")],
    to: Annotated[str | None, Form(description="Comma-separated recipients")] = None,
    group: Annotated[str | None, Form()] = None,
    callerid: Annotated[str | None, Form()] = None,
    callback_url: Annotated[str | None, Form()] = None,
    repeat: Annotated[int, Form(ge=0, le=100)] = 0,
    response_: Annotated[bool, Form(alias="response")] = False,
    idempotency_key: IdempotencyHeader = None,
) -> SubmissionPublic:
    """Submit a voice job as a multipart upload (the JSON variant takes audio_base64 or audio_url)."""
    limit = gateway.settings.forms.max_voice_bytes
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise VoiceFileTooLarge(f"more than {limit} bytes")
    if not data:
        raise NoVoiceFile("the file is empty")
    fields = {"route": "v1/messages/voice", "file": data, "filename": file.filename or "", "to": to,
              "group": group, "callerid": callerid, "callback_url": callback_url, "repeat": repeat,
              "response": response_}

    def build() -> Job:
        return gateway.voice_job(
            caller,
            phones=to,
            group=group,
            audio=data,
            filename=file.filename or "",
            response=response_,
            repeat=repeat,
            callerid=callerid,
            callback_url=callback_url,
        )

    return _idempotent(response, gateway, caller, idempotency_key, fields, build)


@router.get("", response_model=MessagePage)
def list_messages(
    store: StoreDep,
    caller: CallerDep,
    type: Literal["sms", "tts", "voice", "vtts"] | None = None,
    status_code: Annotated[int | None, Query(alias="status", ge=0, le=999)] = None,
    outcome: Literal["pending", "success", "failure"] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    phone: Annotated[str | None, Query(max_length=40)] = None,
    user_id: RowId | None = None,
    job_id: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=manage.MAX_PAGE)] = manage.DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> MessagePage:
    """The caller's messages, newest first (sub-users see their own, owners their account's)."""
    f = manage.MessageFilter(
        kind=type,
        status=status_code,
        outcome=outcome,
        since=_aware(since),
        until=_aware(until),
        phone=parse_phone(phone, store.gateway.settings.phones) if phone else None,
        user_id=user_id,
        job_id=job_id,
    )
    with store.read() as session:
        page = manage.list_messages(session, caller, f, limit=limit, cursor=cursor)
        return MessagePage(items=[message_public(m) for m in page.items], next_cursor=page.next_cursor)


def _aware(when: dt.datetime | None) -> dt.datetime | None:
    """Times without a zone are read as UTC."""
    return when.replace(tzinfo=dt.UTC) if when is not None and when.tzinfo is None else when


@router.get("/{message_id}", response_model=MessageDetail)
def get_message(message_id: str, store: StoreDep, caller: CallerDep) -> MessageDetail:
    """One message with its timeline; 404 (500 ERROR: MESSAGE NOT FOUND) for unknown and foreign IDs."""
    with store.read() as session:
        return message_detail(manage.message_detail(session, caller, message_id.strip().lower()))


@router.post("/{message_id}/cancel", response_model=MessagePublic)
def cancel_message(message_id: str, gateway: GatewayDep, caller: CallerDep) -> MessagePublic:
    """Cancel a queued message (604 Cancelled, its reservation released); 409 while it is in progress."""
    return message_public(gateway.cancel(caller, message_id))
