"""What a submission is made of: who submits (Caller, read from an account row at login) and what
(Job: recipients and how to draft each one's message), and what it answers (Submitted). api.core.service
builds jobs; api.core.job_writer writes them, many per transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from coded.errors import CodedError
from store import accounts
from store.errors import AccountNotActive, AccountNotFound, InvalidUsername
from store.models import Account, Role


@dataclass(frozen=True)
class Caller:
    """Who is asking, after authentication."""

    user_id: int
    """The authenticated account row (owner or sub-user)."""
    owner_id: int
    """The paying account (== user_id for owners)."""
    username: str
    role: str
    """store.models.Role value: administrator | owner | subuser."""
    credential: str | None = field(default=None, repr=False, compare=False)
    """The stored password hash a legacy login was verified against: write_jobs() reads it again, with
    the account's flags, in the write's transaction (on SQLite under its writer lock; on PostgreSQL a
    change committed during the write itself is not seen, as before). None: an API key or a GUI
    session, checked their own way."""


@dataclass(frozen=True)
class Submitted:
    """One recipient of one submission."""

    message_id: str
    """32 hex; also for refused recipients (a 502 do-not-call is stored as its own message)."""
    phone: str
    """E.164."""
    code: int
    """100 Queued, or an error code such as 502."""
    text: str


@dataclass(frozen=True)
class Draft:
    """What one recipient's message will be, before pricing."""

    kind: str
    body: str
    settings: dict[str, Any]
    callerid: str | None
    blob: str | None = None
    parts: int = 1


@dataclass(frozen=True)
class Claim:
    """A submission's idempotency key and the hash of its request (api.core.idempotency)."""

    key: str
    request_hash: str


@dataclass
class Job:
    """A validated submission, ready to write: who submits, the recipients (raw list and/or group) and
    how to draft each one's message. Built by the `*_job` methods, written by `submit`, `submit_async`
    or, many at once, `write_jobs`."""

    caller: Caller
    phones: tuple[str, ...]
    group: str | None
    draft: Callable[[str], Draft]
    callback_url: str
    audio: list[tuple[bytes, str, str]] = field(default_factory=list)
    """(bytes, media type, origin) to store as blobs in the submission's transaction."""
    audio_seconds: float = 0.0
    """The length of the audio decoded for this job (the prompt length check of vtts)."""
    idempotency: Claim | None = None
    """Written at most once per key and login (api.core.idempotency): claimed in the write's transaction."""


def fixed(draft: Draft) -> Callable[[str], Draft]:
    return lambda _phone: draft



ACCOUNTS = Account.metadata.tables[Account.__tablename__]
_PARENTS = ACCOUNTS.alias("parent")
LOGIN_SELECT = (
    select(
        ACCOUNTS.c.id,
        ACCOUNTS.c.username,
        ACCOUNTS.c.password_hash,
        ACCOUNTS.c.active,
        ACCOUNTS.c.role,
        ACCOUNTS.c.parent_id,
        _PARENTS.c.id.label("parent_found"),
        _PARENTS.c.active.label("parent_active"),
    )
    .select_from(ACCOUNTS.outerjoin(_PARENTS, _PARENTS.c.id == ACCOUNTS.c.parent_id))
)
LOGIN_ROW = LOGIN_SELECT.where(ACCOUNTS.c.username == bindparam("name"))
"""Built once: a login runs on every legacy request, and building the statement cost more than running it."""
LOGIN_ROWS_BY_ID = LOGIN_SELECT.where(ACCOUNTS.c.id.in_(bindparam("ids", expanding=True)))
"""The logins of a batch of jobs, read again in its write (api.core.job_writer)."""


def login_row(session: Session, username: str) -> Any:
    """What a login needs of an account and its parent, in one statement (None: no such user)."""
    try:
        name = accounts.normalise_username(username)
    except InvalidUsername:
        return None
    return session.connection().execute(LOGIN_ROW, {"name": name}).first()


def row_caller(row: Any) -> Caller | CodedError:
    """The account half of the one login verdict (api.core.service.Gateway._login_verdict), on a login_row()
    (the row of an account and its parent): the Caller, or the refusal to raise once the credentials are
    known to be right: AccountNotFound for a sub-user whose owner is gone, AccountNotActive when the
    account or its owner is disabled. write_jobs() applies it again in the write's transaction."""
    has_parent = row.parent_id is not None and row.parent_found is not None
    if row.role == Role.SUBUSER and not has_parent:
        return AccountNotFound(f"sub-user {row.username} has no account")
    if not row.active or (has_parent and not row.parent_active):
        return AccountNotActive(row.username)
    owner = row.parent_id if row.parent_id is not None else row.id
    return Caller(row.id, owner, row.username, row.role, credential=row.password_hash)
