"""The schema: SQLAlchemy 2 typed models of every table (docs/store.md has one section per table).

Money columns are integers in micro-units of the currency (1 USD = 1_000_000): exact, summed natively by
both databases (SQLite would turn NUMERIC into floating point) and cheap to index. Timestamps are stored
as naive UTC and always read back as aware UTC datetimes (`UtcDateTime`), so SQLite and PostgreSQL agree.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from coded.statuses import QUEUED

MICROS = 1_000_000
"""Micro-units per currency unit: every money column counts these."""
INT4_MAX = 2**31 - 1
"""The largest value of an Integer column on PostgreSQL (int4): account, group, do-not-call ids."""
INT8_MAX = 2**63 - 1
"""The largest value of a BigInteger column on PostgreSQL and of any SQLite integer: ledger ids, money."""
MAX_MICROS = 10**15
"""The largest amount of money a request may name (a billion currency units): sums of many such
amounts stay far inside BigInteger."""

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime stored as naive UTC; naive input is refused (it is a bug)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC datetime")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
    }


class Role(enum.StrEnum):
    ADMINISTRATOR = "administrator"
    OWNER = "owner"
    SUBUSER = "subuser"


class MessageKind(enum.StrEnum):
    SMS = "sms"
    TTS = "tts"
    VOICE = "voice"
    VTTS = "vtts"


class EntryKind(enum.StrEnum):
    """Ledger entry kinds; the sign of `amount` follows from the kind (docs/store.md)."""

    TOPUP = "topup"
    RESERVE = "reserve"
    CHARGE = "charge"
    RELEASE = "release"
    REFUND = "refund"


class Account(Base):
    """A login: an owner (has the balance), a sub-user of an owner, or an administrator."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(254), unique=True)
    """The e-mail address, lower-cased."""
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    role: Mapped[str] = mapped_column(String(16), default=Role.OWNER.value)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    """The owner a sub-user belongs to; NULL for owners and administrators."""
    spending_limit: Mapped[int | None] = mapped_column(BigInteger)
    """Micro-units a sub-user may commit in total (reservations and charges); NULL: no limit."""
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    created_at: Mapped[dt.datetime]
    max_concurrent_calls: Mapped[int | None] = mapped_column(Integer)
    """An owner's voice calls in flight together, over every worker node; NULL: the claiming node's
    dialer.max_concurrent (docs/operations.md, 'Per-account call limits')."""
    calls_per_second: Mapped[float | None] = mapped_column(Float)
    """An owner's call attempts started per second, over every worker node; NULL: dialer.calls_per_second."""
    dial_tokens: Mapped[float | None] = mapped_column(Float)
    """The owner's calls-per-second bucket (ivr.dialer.Bucket): tokens left at dial_tokens_at; NULL: full.
    Written by the voice worker's claim under the account's row lock."""
    dial_tokens_at: Mapped[dt.datetime | None]

    parent: Mapped[Account | None] = relationship(remote_side=[id])

    @property
    def owner_id(self) -> int:
        """The account whose balance this login spends."""
        return self.parent_id if self.parent_id is not None else self.id


class ApiKey(Base):
    """An API key for the v1 API: only a short public prefix (for lookup) and a hash of the whole key."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class LedgerEntry(Base):
    """One movement of money; an owner's balance is the sum of its entries' amounts, never edited."""

    __tablename__ = "ledger"
    __table_args__ = (
        Index("ix_ledger_user_kind", "user_id", "kind"),
        Index("ix_ledger_account_entry", "account_id", "id", "amount"),
    )
    """ix_ledger_account_entry covers the sum of an owner's entries after a checkpoint (no table reads)."""

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    """The owner whose balance moves."""
    user_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    """The login (owner or sub-user) that caused it, for spending limits."""
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    """Signed micro-units: top-ups, releases and refunds are positive, reservations and charges negative."""
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]


class LedgerCheckpoint(Base):
    """The sum of an owner's ledger entries up to and including entry `ledger_id`, appended (never
    edited) every few hundred entries so a balance reads one checkpoint plus the entries after it.

    Valid because every ledger write of an owner holds the owner's row lock (store.ledger), so the
    owner's entries commit in id order and none below `ledger_id` can appear later."""

    __tablename__ = "ledger_checkpoints"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    ledger_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    """The last ledger entry of the owner this checkpoint covers."""
    balance: Mapped[int] = mapped_column(BigInteger)
    """SUM(amount) of the owner's entries with id <= ledger_id, in micro-units."""
    entries: Mapped[int] = mapped_column(BigInteger)
    """How many entries that sum covers (a check for audits; not used by the balance)."""
    created_at: Mapped[dt.datetime]


class Rate(Base):
    """Prices for numbers starting with `prefix` (digits of the E.164 number); the longest prefix wins."""

    __tablename__ = "rates"

    prefix: Mapped[str] = mapped_column(String(16), primary_key=True)
    """Digits without '+'; the empty prefix is the default for every number."""
    sms: Mapped[int | None] = mapped_column(BigInteger)
    """Micro-units per SMS part; NULL: SMS not offered there."""
    voice_minute: Mapped[int | None] = mapped_column(BigInteger)
    tts_minute: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(String(200), default="")


class Blob(Base):
    """Content-addressed audio (uploads, fetched voice URLs), kept in the database so any node can read it."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    origin: Mapped[str] = mapped_column(Text, default="")
    """Where it was first seen: 'upload:<file name>' or the URL."""
    created_at: Mapped[dt.datetime]


class Message(Base):
    """One recipient of one submission, and everything that happened to it."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_due", "finished_at", "next_attempt_at"),
        Index("ix_messages_account_created", "account_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    """32 hex: a UUID version 7 (store.queue.new_message_id: time-ordered, 74 random bits)."""
    job_id: Mapped[str] = mapped_column(String(32), index=True)
    """Shared by the recipients of one submission."""
    kind: Mapped[str] = mapped_column(String(8))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    """The owner (whose balance pays)."""
    user_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    """The login that submitted it (the owner or a sub-user)."""
    phone: Mapped[str] = mapped_column(String(20))
    """E.164 with '+'."""
    callerid: Mapped[str] = mapped_column(String(20), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    """The SMS text or the TTS text."""
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The job's settings: repeat, response, language, gender (and the vtts segment list)."""
    prompt_blob: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256", ondelete="RESTRICT"))
    """The uploaded or fetched audio this message plays."""
    prompt_sha256: Mapped[str | None] = mapped_column(String(64))
    """Content hash of the rendered prompt (a cache key any node can rebuild from the spec and blobs)."""
    status_code: Mapped[int] = mapped_column(Integer, default=QUEUED[0])
    status_text: Mapped[str] = mapped_column(String(200), default=QUEUED[1])
    response: Mapped[str] = mapped_column(String(1), default="")
    """The digit pressed, or empty."""
    duration_s: Mapped[int | None] = mapped_column(Integer)
    sip_call_id: Mapped[str | None] = mapped_column(String(255))
    sip_code: Mapped[int | None] = mapped_column(Integer)
    smsc_error: Mapped[str | None] = mapped_column(String(100))
    parts: Mapped[int] = mapped_column(Integer, default=1)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    rate: Mapped[int] = mapped_column(BigInteger, default=0)
    """Micro-units per part (SMS) or per minute (calls), fixed at submission."""
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    """Micro-units held at submission (positive)."""
    cost: Mapped[int | None] = mapped_column(BigInteger)
    """Micro-units charged; NULL until settled."""
    callback_url: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    next_attempt_at: Mapped[dt.datetime | None]
    """When it may be claimed; NULL once finished or while waiting on the SMSC."""
    finished_at: Mapped[dt.datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[dt.datetime | None]

    events: Mapped[list[MessageEvent]] = relationship(
        back_populates="message", order_by="MessageEvent.id", cascade="all, delete-orphan"
    )
    sms_parts: Mapped[list[SmsPart]] = relationship(order_by="SmsPart.part", cascade="all, delete-orphan")
    """SMSC message IDs, one per part (found again by ID when a delivery receipt arrives)."""

    @property
    def smsc_ids(self) -> list[str]:
        return [part.smsc_id for part in self.sms_parts]


class SmsPart(Base):
    """One part of an SMS as the SMSC acknowledged it: its message ID and the state of its receipt."""

    __tablename__ = "sms_parts"

    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    """1-based part number."""
    smsc_id: Mapped[str] = mapped_column(String(65), index=True)
    state: Mapped[str] = mapped_column(String(16), default="")
    """Receipt state (DELIVRD, UNDELIV, ...); empty until the receipt arrives."""


class MessageEvent(Base):
    """One step of a message's timeline: queued, claimed, dialling, ringing, answered, key, hung_up, ..."""

    __tablename__ = "message_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime]
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")

    message: Mapped[Message] = relationship(back_populates="events")


class OutboxItem(Base):
    """A status callback or webhook to POST; a sender claims due rows, delivers and marks them."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "delivered_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    """callback (a message's final status) or webhook (an incoming SMS)."""
    url: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    """The exact bytes to POST (JSON), so a retry signs and sends the same thing."""
    secret_ref: Mapped[str] = mapped_column(String(100), default="")
    """Names the signing secret (e.g. 'account:12'); the secret itself is not stored here."""
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime]
    delivered_at: Mapped[dt.datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]


class Group(Base):
    """A named list of phone numbers of one account (the seed's `group` parameter)."""

    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("account_id", "name", name="uq_groups_account_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime]


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="")


class DoNotCall(Base):
    """A number that must not be called or texted: by anyone (account_id NULL) or by one account."""

    __tablename__ = "do_not_call"
    __table_args__ = (Index("ix_do_not_call_phone", "phone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]


class VirtualNumber(Base):
    """A number we receive SMS on, the account it belongs to and where incoming messages are POSTed."""

    __tablename__ = "virtual_numbers"

    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    webhook_url: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]


class MoGroup(Base):
    """A concatenated incoming SMS whose parts are still arriving (sms.inbound): kept from its first part
    until its last, or until `sms.mo_timeout_s` after `first_at`, across restarts."""

    __tablename__ = "sms_mo_groups"
    __table_args__ = (
        UniqueConstraint("source", "destination", "reference", "total", name="uq_sms_mo_groups_key"),
        Index("ix_sms_mo_groups_first_at", "first_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    source: Mapped[str] = mapped_column(String(21))
    """The sender, as the store keeps numbers (E.164, or the SMSC's address when it is none)."""
    destination: Mapped[str] = mapped_column(String(21))
    reference: Mapped[int] = mapped_column(Integer)
    """The concatenation reference (8 or 16 bits, or the SAR reference)."""
    total: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[dt.datetime]
    """When its first stored part arrived: the timeout counts from here."""


class MoPart(Base):
    """One stored part of a MoGroup: the short_message as received (decoded when the message is joined)."""

    __tablename__ = "sms_mo_parts"

    group_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("sms_mo_groups.id", ondelete="CASCADE"),
        primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    """1-based position of the part."""
    short_message: Mapped[bytes] = mapped_column(LargeBinary)
    data_coding: Mapped[int] = mapped_column(Integer)
    esm_class: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[dt.datetime]


class ConcatCounter(Base):
    """The last concatenation reference handed out per destination (sms.sender), so consecutive long
    messages to one handset never share a reference within 256 (8-bit) or 65,536 (16-bit) messages."""

    __tablename__ = "sms_concat_counters"

    destination: Mapped[str] = mapped_column(String(21), primary_key=True)
    counter: Mapped[int] = mapped_column(BigInteger)
    """References allocated so far; the reference is this counter modulo 2^bits."""


class LoginFailure(Base):
    """Failed password logins of one username (`user:<name>`) or source address (`addr:<ip>`), and the
    lock they earned (api.core.throttle): shared by every process of the gateway."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    """Failures in a row (forgotten after the throttle's forget_after_s without one)."""
    last_failure_at: Mapped[dt.datetime]
    locked_until: Mapped[dt.datetime | None]
    """No password login for this key before then (NULL: not locked)."""


class IdempotencyKey(Base):
    """A submission's idempotency key (v1 `Idempotency-Key`, legacy `idempotency_key`) and the answer it
    got, so a retry is answered the same without writing again (api.core.idempotency)."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    """The login that sent it: keys are per login."""
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 of what was asked (never the password): the same key with another request is refused."""
    response: Mapped[list[Any] | None] = mapped_column(JSON)
    """The recipients' answers ({id, phone, code, text}); NULL only inside the claiming transaction."""
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
