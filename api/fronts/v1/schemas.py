"""Request and response bodies of the v1 API (Create / Update / Public variants per resource).

Money is always an integer count of micro-units of the currency (`*_micros`: 1 USD = 1_000_000), exact in
JSON; times are ISO 8601 in UTC. Validation here is structural (types, sizes); the gateway checks the
content (numbers, texts, voices) and answers the seed's codes.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.core.errors import InvalidParameter
from store.models import (
    INT4_MAX,
    INT8_MAX,
    MAX_MICROS,
    MICROS,
    Account,
    ApiKey,
    DoNotCall,
    LedgerEntry,
    Message,
    VirtualNumber,
)

Phone = Annotated[str, Field(min_length=1, max_length=40, examples=["+12506063167"])]

# --- integers at the edge --------------------------------------------------------------------------------
# Every integer a v1 request carries (path, query, body) is one of these types, so a value no column can
# hold is refused here (a path id: 404, anything else: 422, api.fronts.v1.problems) instead of overflowing the
# driver (SQLite's integers are 64-bit, PostgreSQL's Integer columns 32-bit). The GUI uses them too.
RowId = Annotated[int, Field(ge=1, le=INT4_MAX, description="An id (1 to 2147483647).")]
BigRowId = Annotated[int, Field(ge=1, le=INT8_MAX, description="An id (1 to 9223372036854775807).")]
RowIdAfter = Annotated[int, Field(ge=0, le=INT4_MAX, description="The last id of the page before (0 first).")]
Micros = Annotated[int, Field(ge=0, le=MAX_MICROS, description="Micro-units of the currency (0 to 10^15).")]
PositiveMicros = Annotated[int, Field(gt=0, le=MAX_MICROS, description="Micro-units (1 to 10^15).")]


def row_id(text: str, field: str) -> int | None:
    """An id typed into a form or query string ('' -> None), as RowId bounds it; InvalidParameter for
    anything else (the GUI's filters)."""
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(INT4_MAX))) or not (
        1 <= int(text) <= INT4_MAX
    ):
        raise InvalidParameter(field, f"{field} must be an id from 1 to {INT4_MAX}")
    return int(text)
Language = Literal["us", "es"]
Gender = Literal["female", "male"]


class ErrorBody(BaseModel):
    """Every v1 error: the seed's status code and text, and what was wrong."""

    code: int = Field(examples=[505])
    status: str = Field(examples=["USER NOT FOUND OR WRONG PASSWORD"])
    detail: Any = None


def money(micros: int) -> str:
    """12500 -> '0.012500': micro-units as a decimal string in currency units."""
    return f"{Decimal(micros) / MICROS:.6f}"


# --- messages ------------------------------------------------------------------------------------------


class _Recipients(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: list[Phone] | None = Field(default=None, max_length=10_000, description="Recipients (any format).")
    group: str | None = Field(default=None, max_length=100, description="A group of the account, by name.")
    callerid: str | None = Field(default=None, max_length=40)
    callback_url: str | None = Field(default=None, max_length=2048, description="Receives the final status.")


class _VoiceOptions(_Recipients):
    repeat: int = Field(default=0, ge=0, le=100, description="Extra plays of the prompt.")
    response: bool = Field(default=False, description="Listen for one key press.")


class SmsCreate(_Recipients):
    type: Literal["sms"]
    text: str = Field(max_length=10_000)
    tts_fallback: bool = Field(default=False, description="Call numbers that cannot take SMS.")


class TtsCreate(_VoiceOptions):
    type: Literal["tts"]
    text: str = Field(max_length=10_000)
    language: Language = "us"
    gender: Gender = "female"


class VoiceCreate(_VoiceOptions):
    """A recorded prompt: by URL (fetched now) or as base64 bytes (WAV, MP3, FLAC, OGG, M4A)."""

    type: Literal["voice"]
    audio_url: str | None = Field(default=None, max_length=2048)
    audio_base64: str | None = Field(default=None, max_length=15_000_000)
    filename: str = Field(default="", max_length=200)


class TextItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=10_000)


class UrlItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048)


class VttsCreate(_VoiceOptions):
    """Texts and voice URLs played in order (the seed's matrix_vtts); a bare string is a URL when it
    starts with http:// or https://, else text."""

    type: Literal["vtts"]
    segments: list[str | TextItem | UrlItem] = Field(min_length=1, max_length=32)
    language: Language = "us"
    gender: Gender = "female"


MessageCreate = Annotated[SmsCreate | TtsCreate | VoiceCreate | VttsCreate, Field(discriminator="type")]


class SubmittedPublic(BaseModel):
    id: str
    phone: str
    code: int = Field(description="100 Queued, or the refusal (502 do-not-call).")
    status: str


class SubmissionPublic(BaseModel):
    messages: list[SubmittedPublic]


class EventPublic(BaseModel):
    at: dt.datetime
    kind: str
    detail: str


class MessagePublic(BaseModel):
    id: str
    job_id: str
    type: str
    phone: str
    callerid: str
    user_id: int
    code: int
    status: str
    response: str
    duration_s: int | None
    parts: int
    attempts: int
    sip_code: int | None
    smsc_error: str | None
    rate_micros: int
    reserved_micros: int
    cost_micros: int | None
    currency: str
    callback_url: str
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None


class MessageDetail(MessagePublic):
    text: str
    settings: dict[str, Any]
    events: list[EventPublic]


class MessagePage(BaseModel):
    items: list[MessagePublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


# --- accounts ------------------------------------------------------------------------------------------


class MePublic(BaseModel):
    id: int
    username: str
    role: str
    owner_id: int
    active: bool
    currency: str
    spending_limit_micros: int | None
    spent_micros: int
    created_at: dt.datetime


class SubUserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(max_length=254, examples=["ops@example.com"])
    password: str = Field(max_length=256)
    spending_limit_micros: Micros | None = None


class SubUserUpdate(BaseModel):
    """Only the fields given change; `spending_limit_micros: null` removes the limit."""

    model_config = ConfigDict(extra="forbid")

    active: bool | None = None
    spending_limit_micros: Micros | None = None


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(max_length=256)


class SubUserPublic(BaseModel):
    id: int
    username: str
    active: bool
    spending_limit_micros: int | None
    spent_micros: int
    created_at: dt.datetime


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="api key", max_length=100)


class KeyPublic(BaseModel):
    id: int
    prefix: str
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class KeyCreated(KeyPublic):
    key: str = Field(description="The whole key; shown this once, never stored.")


class CallbackSecretPublic(BaseModel):
    secret: str
    header: str
    algorithm: str = "HMAC-SHA256 over the raw request body, hex, prefixed 'sha256='"


# --- money ---------------------------------------------------------------------------------------------


class BalancePublic(BaseModel):
    balance_micros: int = Field(
        description="What this login may still spend: the owner's balance (open reservations deducted), or, "
        "for a sub-user with a limit, what is left of it."
    )
    balance: str = Field(description="The same, in currency units.")
    currency: str
    spending_limit_micros: int | None = Field(default=None, description="A sub-user's spending limit.")
    spent_micros: int | None = Field(default=None, description="A sub-user's spending so far.")


class LedgerEntryPublic(BaseModel):
    id: int
    kind: str
    amount_micros: int
    user_id: int | None
    message_id: str | None
    note: str
    created_at: dt.datetime


class LedgerPage(BaseModel):
    items: list[LedgerEntryPublic]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page.")


class TopUpCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_micros: PositiveMicros
    reference: str = Field(min_length=1, max_length=100, description="Payment reference; once per account.")


class RatePublic(BaseModel):
    prefix: str
    sms_micros: int | None
    voice_minute_micros: int | None
    tts_minute_micros: int | None
    currency: str
    description: str


class RateQuote(BaseModel):
    phone: str
    type: str
    rate_micros: int
    rate: str
    currency: str


# --- lists ---------------------------------------------------------------------------------------------


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone
    name: str = Field(default="", max_length=100)


class MemberPublic(BaseModel):
    phone: str
    name: str


class GroupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    members: list[MemberIn] = Field(default_factory=list, max_length=100_000)


class GroupUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)


class GroupPublic(BaseModel):
    id: int
    name: str
    members: int
    created_at: dt.datetime


class ImportResult(BaseModel):
    rows: int
    added: int


class DncCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone
    note: str = Field(default="", max_length=500)
    global_list: bool = Field(default=False, alias="global", description="The global list (administrators).")


class DncPublic(BaseModel):
    id: int
    phone: str
    note: str
    global_list: bool = Field(serialization_alias="global")
    created_at: dt.datetime


class CarrierPublic(BaseModel):
    phone: str
    country_code: str
    country: str
    carrier: str
    line_type: str
    valid: bool


# --- virtual numbers -----------------------------------------------------------------------------------

WebhookUrl = Annotated[
    str,
    Field(min_length=1, max_length=2048, examples=["https://crm.example.com/sms/incoming"],
          description="Receives each incoming SMS as a signed form POST (docs/sms.md)."),
]


class NumberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: Phone = Field(description="Any format; national forms are read in `phones.default_region`.")
    webhook_url: WebhookUrl


class NumberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook_url: WebhookUrl


class NumberPublic(BaseModel):
    number: str = Field(examples=["+12505550100"], description="E.164.")
    webhook_url: str
    created_at: dt.datetime


# --- presenting store rows -----------------------------------------------------------------------------


def message_public(m: Message) -> MessagePublic:
    return MessagePublic(**_message_fields(m))


def message_detail(m: Message) -> MessageDetail:
    events = [EventPublic(at=e.at, kind=e.kind, detail=e.detail) for e in m.events]
    return MessageDetail(**_message_fields(m), text=m.body, settings=dict(m.settings or {}), events=events)


def _message_fields(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "job_id": m.job_id,
        "type": m.kind,
        "phone": m.phone,
        "callerid": m.callerid,
        "user_id": m.user_id,
        "code": m.status_code,
        "status": m.status_text,
        "response": m.response,
        "duration_s": m.duration_s,
        "parts": m.parts,
        "attempts": m.attempts,
        "sip_code": m.sip_code,
        "smsc_error": m.smsc_error,
        "rate_micros": m.rate,
        "reserved_micros": m.reserved,
        "cost_micros": m.cost,
        "currency": m.currency,
        "callback_url": m.callback_url,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "finished_at": m.finished_at,
    }


def key_public(row: ApiKey) -> KeyPublic:
    return KeyPublic(
        id=row.id,
        prefix=row.prefix,
        name=row.name,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def subuser_public(account: Account, spent: int) -> SubUserPublic:
    return SubUserPublic(
        id=account.id,
        username=account.username,
        active=account.active,
        spending_limit_micros=account.spending_limit,
        spent_micros=spent,
        created_at=account.created_at,
    )


def entry_public(entry: LedgerEntry) -> LedgerEntryPublic:
    return LedgerEntryPublic(
        id=entry.id,
        kind=entry.kind,
        amount_micros=entry.amount,
        user_id=entry.user_id,
        message_id=entry.message_id,
        note=entry.note,
        created_at=entry.created_at,
    )


def dnc_public(entry: DoNotCall) -> DncPublic:
    return DncPublic(
        id=entry.id,
        phone=entry.phone,
        note=entry.note,
        global_list=entry.account_id is None,
        created_at=entry.created_at,
    )


def number_public(row: VirtualNumber) -> NumberPublic:
    return NumberPublic(number=row.number, webhook_url=row.webhook_url, created_at=row.created_at)
