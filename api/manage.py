"""Management operations that are not submissions: listing messages, sub-users, API keys, groups,
do-not-call entries and the ledger.

These are plain functions over a store `Session`, called by the v1 JSON API and later by the GUI, so no
rule lives in a route. Each takes the `Viewer` that asks (api.service.Caller satisfies it) and enforces
who may see or change what:

- administrators see every message and top up any account; they manage the global do-not-call list;
- owners manage their sub-users, their account's groups and do-not-call entries, and see every message
  and ledger entry of their account;
- sub-users see their own messages and ledger entries, their own spending limit and what is left of it
  (never the owner's balance when they have a limit), use and edit their account's groups (create,
  rename, add and remove members, but never delete a group), and may add (never remove) do-not-call
  entries; an owner's reset of a sub-user's password revokes that sub-user's API keys.

docs/api-v1.md, "Roles", has the whole table; every front (v1, the legacy `balance`, the GUI) asks these
functions, so a rule is written once.

Money is in micro-units (store.models.MICROS); time is always an argument.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from argon2 import PasswordHasher
from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select
from sqlalchemy.orm import Session

from api.errors import GatewayError, GroupNotFound, InvalidParameter
from api.phones import PhoneSettings, parse_phone
from coded.statuses import FIRST_FAILURE
from store import accounts, ledger, lists, queue
from store.errors import DuplicateEntry
from store.models import (
    MAX_MICROS,
    Account,
    ApiKey,
    DoNotCall,
    EntryKind,
    Group,
    GroupMember,
    LedgerEntry,
    Message,
    Role,
)

MAX_PAGE = 500
DEFAULT_PAGE = 50
MAX_IMPORT_ROWS = 100_000
MAX_NAME_CHARS = 100


class Viewer(Protocol):
    """Who is asking (api.service.Caller has these fields)."""

    @property
    def user_id(self) -> int: ...

    @property
    def owner_id(self) -> int: ...

    @property
    def role(self) -> str: ...


class Forbidden(GatewayError):
    """The caller's role may not do this (a sub-user managing sub-users, a non-administrator topping up)."""

    status_text = "ERROR: FORBIDDEN"
    http_status = 403


class NotFound(GatewayError):
    """An unknown or foreign sub-user, API key, group member or do-not-call entry."""

    status_text = "ERROR: NOT FOUND"
    http_status = 404


class InvalidCursor(InvalidParameter):
    def __init__(self, detail: str = "") -> None:
        super().__init__("cursor", detail or "the cursor was not made by this API")


# --- call limits ---------------------------------------------------------------------------------------

MAX_CALL_LIMIT = 10_000
"""The largest per-account concurrency or calls-per-second limit accepted."""


def set_call_limits(account: Account, *, max_concurrent_calls: int | None,
                    calls_per_second: float | None) -> None:
    """An owner's voice call limits over every worker node (api/worker.py applies them when it claims);
    None: the claiming node's `dialer.max_concurrent` / `dialer.calls_per_second`."""
    if account.parent_id is not None:
        raise InvalidParameter("account", "call limits belong to an owner: a sub-user's calls count as its "
                               "owner's")
    if max_concurrent_calls is not None and not 1 <= max_concurrent_calls <= MAX_CALL_LIMIT:
        raise InvalidParameter("max_concurrent_calls", f"calls at once are 1 to {MAX_CALL_LIMIT}")
    if calls_per_second is not None and not 0 < calls_per_second <= MAX_CALL_LIMIT:
        raise InvalidParameter("calls_per_second", f"calls per second are above 0, at most {MAX_CALL_LIMIT}")
    account.max_concurrent_calls = max_concurrent_calls
    account.calls_per_second = calls_per_second


# --- roles ---------------------------------------------------------------------------------------------


def require_admin(viewer: Viewer) -> None:
    if viewer.role != Role.ADMINISTRATOR:
        raise Forbidden("administrators only")


def require_owner(viewer: Viewer) -> None:
    if viewer.role != Role.OWNER:
        raise Forbidden("account owners only")


def require_not_subuser(viewer: Viewer) -> None:
    if viewer.role == Role.SUBUSER:
        raise Forbidden("the account owner only")


def account_of(session: Session, viewer: Viewer) -> Account:
    """The viewer's own account row."""
    account = session.get(Account, viewer.user_id)
    if account is None:
        raise NotFound(f"account {viewer.user_id}")
    return account


# --- messages ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageFilter:
    """What GET /v1/messages may filter on; None means any."""

    kind: str | None = None
    status: int | None = None
    outcome: str | None = None
    """pending (not finished), success (finished, code 0-399) or failure (finished, 400 and up)."""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    phone: str | None = None
    """E.164."""
    user_id: int | None = None
    """The sub-user (or owner) that submitted it."""
    job_id: str | None = None


T = TypeVar("T")
_Query = TypeVar("_Query", bound=Select)  # type: ignore[type-arg]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
    """Pass it back as `cursor` for the next page; None on the last page."""


OUTCOMES = ("pending", "success", "failure")


def message_scope(viewer: Viewer) -> list[ColumnElement[bool]]:
    """The conditions that keep `viewer`'s messages (every front lists messages through them)."""
    if viewer.role == Role.ADMINISTRATOR:
        return []
    if viewer.role == Role.SUBUSER:
        return [Message.user_id == viewer.user_id]
    return [Message.account_id == viewer.owner_id]


def filter_messages(query: _Query, f: MessageFilter) -> _Query:
    """`query` (over Message, or over some of its columns) narrowed by the filter."""
    conditions: list[ColumnElement[bool]] = []
    if f.kind is not None:
        conditions.append(Message.kind == f.kind)
    if f.status is not None:
        conditions.append(Message.status_code == f.status)
    if f.outcome == "pending":
        conditions.append(Message.finished_at.is_(None))
    elif f.outcome == "success":
        conditions += [Message.finished_at.is_not(None), Message.status_code < FIRST_FAILURE]
    elif f.outcome == "failure":
        conditions += [Message.finished_at.is_not(None), Message.status_code >= FIRST_FAILURE]
    elif f.outcome is not None:
        raise InvalidParameter("outcome", f"outcome must be one of {', '.join(OUTCOMES)}")
    for column, value in ((Message.phone, f.phone), (Message.user_id, f.user_id), (Message.job_id, f.job_id)):
        if value is not None:
            conditions.append(column == value)
    if f.since is not None:
        conditions.append(Message.created_at >= f.since)
    if f.until is not None:
        conditions.append(Message.created_at < f.until)
    return query.where(*conditions)


def encode_cursor(created_at: dt.datetime, message_id: str) -> str:
    raw = f"{created_at.astimezone(dt.UTC).isoformat()}|{message_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """(created_at, id) of the last message of the previous page; InvalidCursor for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, message_id = raw.partition("|")
        created_at = dt.datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None
    if created_at.tzinfo is None or not message_id or len(message_id) > 32:
        raise InvalidCursor()
    return created_at, message_id


def _page_size(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidParameter("limit", f"limit must be 1 to {MAX_PAGE}")
    return limit


def list_messages(
    session: Session,
    viewer: Viewer,
    f: MessageFilter,
    *,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
) -> Page[Message]:
    """The viewer's messages, newest first, `limit` a page; keyset pagination by an opaque cursor, so a
    page stays stable while new messages arrive."""
    query = filter_messages(select(Message).where(*message_scope(viewer)), f)
    if cursor:
        created_at, message_id = decode_cursor(cursor)
        older = or_(
            Message.created_at < created_at, and_(Message.created_at == created_at, Message.id < message_id)
        )
        query = query.where(older)
    query = query.order_by(Message.created_at.desc(), Message.id.desc()).limit(_page_size(limit) + 1)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    items = rows[:limit]
    next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if more else None
    return Page(items, next_cursor)


def message_detail(session: Session, viewer: Viewer, message_id: str) -> Message:
    """One message with its events timeline loaded; MessageNotFound (500) for unknown and foreign IDs."""
    viewer_row = account_of(session, viewer)
    message = queue.get_message(session, message_id, viewer_row)
    len(message.events)  # load the timeline while the session is open
    return message


# --- sub-users -----------------------------------------------------------------------------------------


def list_subusers(session: Session, viewer: Viewer) -> Sequence[Account]:
    require_owner(viewer)
    return accounts.subusers(session, account_of(session, viewer))


def get_subuser(session: Session, viewer: Viewer, subuser_id: int) -> Account:
    """One of the owner's sub-users; NotFound for anyone else's."""
    require_owner(viewer)
    account = session.get(Account, subuser_id)
    if account is None or account.parent_id != viewer.user_id:
        raise NotFound(f"no sub-user {subuser_id}")
    return account


def create_subuser(
    session: Session,
    viewer: Viewer,
    *,
    username: str,
    password: str,
    now: dt.datetime,
    spending_limit: int | None = None,
    hasher: PasswordHasher = accounts.DEFAULT_HASHER,
) -> Account:
    """A new sub-user of the viewer's account (which it spends from, within `spending_limit`)."""
    require_owner(viewer)
    _check_limit(spending_limit)
    return accounts.create_account(
        session,
        username=username,
        password=password,
        now=now,
        role=Role.SUBUSER,
        parent=account_of(session, viewer),
        spending_limit=spending_limit,
        hasher=hasher,
    )


def _check_limit(spending_limit: int | None) -> None:
    if spending_limit is not None and not 0 <= spending_limit <= MAX_MICROS:
        raise InvalidParameter("spending_limit", f"a spending limit is 0 to {MAX_MICROS} micro-units")


def update_subuser(
    session: Session,
    viewer: Viewer,
    subuser_id: int,
    *,
    active: bool | None = None,
    spending_limit: int | None = None,
    clear_limit: bool = False,
) -> Account:
    """Enable or disable a sub-user, set its spending limit, or remove the limit (`clear_limit`)."""
    account = get_subuser(session, viewer, subuser_id)
    if active is not None:
        accounts.set_active(session, account, active)
    if clear_limit:
        account.spending_limit = None
    elif spending_limit is not None:
        _check_limit(spending_limit)
        account.spending_limit = spending_limit
    session.flush()
    return account


def reset_subuser_password(
    session: Session,
    viewer: Viewer,
    subuser_id: int,
    password: str,
    now: dt.datetime,
    hasher: PasswordHasher = accounts.DEFAULT_HASHER,
) -> Account:
    """Give a sub-user a new password and revoke every API key of that login: whoever knew the old
    password may have made keys with it. Its GUI sessions end and a legacy login's cached credentials
    retire with the old hash."""
    account = get_subuser(session, viewer, subuser_id)
    accounts.set_password(session, account, password, hasher)
    accounts.revoke_api_keys(session, account, now)
    return account


def spent(session: Session, account: Account) -> int:
    """Micro-units a login has committed (charges and open reservations, less refunds)."""
    return ledger.spent(session, account.id)


@dataclass(frozen=True)
class Funds:
    """What a login may spend, as it may see it (GET /v1/balance, the legacy `balance`, the GUI)."""

    balance: int
    """Micro-units this login may still commit: the owner's balance (open reservations deducted) for
    owners, administrators and sub-users without a limit; what is left of its limit for a sub-user
    with one (never below 0; the owner's balance is not shown to it)."""
    currency: str
    spending_limit: int | None = None
    """A sub-user's limit (None: none, or not a sub-user)."""
    spent: int | None = None
    """A sub-user's spending so far (None for owners and administrators)."""


def funds(session: Session, viewer: Viewer) -> Funds:
    """The viewer's Funds. A sub-user with a limit may still be refused (503) when the owner's balance
    runs out first."""
    owner = session.get(Account, viewer.owner_id)
    if owner is None:
        raise NotFound(f"account {viewer.owner_id}")
    if viewer.role != Role.SUBUSER:
        return Funds(ledger.balance(session, owner.id), owner.currency)
    user = account_of(session, viewer)
    used = ledger.spent(session, user.id)
    if user.spending_limit is None:
        return Funds(ledger.balance(session, owner.id), owner.currency, None, used)
    return Funds(max(0, user.spending_limit - used), owner.currency, user.spending_limit, used)


# --- API keys ------------------------------------------------------------------------------------------


def list_keys(session: Session, viewer: Viewer) -> Sequence[ApiKey]:
    """The viewer's own keys, revoked ones included (they show when they were revoked)."""
    query = select(ApiKey).where(ApiKey.account_id == viewer.user_id).order_by(ApiKey.id)
    return session.scalars(query).all()


def create_key(session: Session, viewer: Viewer, name: str, now: dt.datetime) -> tuple[ApiKey, str]:
    """A new key of the viewer's login: (row, plaintext). The plaintext is not kept anywhere."""
    return accounts.create_api_key(session, account_of(session, viewer), now, _name(name, "name"))


def revoke_key(session: Session, viewer: Viewer, prefix: str, now: dt.datetime) -> ApiKey:
    """Revoke one of the viewer's keys by its prefix (revoking twice keeps the first time)."""
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.account_id == viewer.user_id))
    if row is None:
        raise NotFound(f"no API key {prefix[:16]!r}")
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
    return row


# --- groups --------------------------------------------------------------------------------------------


def _name(value: str, field: str) -> str:
    text = value.strip()
    if not text or len(text) > MAX_NAME_CHARS or not text.isprintable():
        raise InvalidParameter(field, f"{field} must be 1 to {MAX_NAME_CHARS} printable characters")
    return text


def list_groups(session: Session, viewer: Viewer) -> list[tuple[Group, int]]:
    """The account's groups by name, each with its member count."""
    counts = (
        select(Group, func.count(GroupMember.phone))
        .outerjoin(GroupMember, GroupMember.group_id == Group.id)
        .where(Group.account_id == viewer.owner_id)
        .group_by(Group.id)
        .order_by(Group.name)
    )
    return [(group, int(count)) for group, count in session.execute(counts)]


def get_group(session: Session, viewer: Viewer, group_id: int) -> Group:
    group = session.get(Group, group_id)
    if group is None or group.account_id != viewer.owner_id:
        raise GroupNotFound(f"no group {group_id}")
    return group


def create_group(
    session: Session,
    viewer: Viewer,
    name: str,
    now: dt.datetime,
    members: Sequence[tuple[str, str]] = (),
    phones: PhoneSettings | None = None,
) -> Group:
    """A new group of the account, with (phone, name) members (numbers normalised to E.164)."""
    group = lists.create_group(session, viewer.owner_id, _name(name, "name"), now)
    if members:
        add_members(session, viewer, group.id, members, phones)
    return group


def rename_group(session: Session, viewer: Viewer, group_id: int, name: str) -> Group:
    group = get_group(session, viewer, group_id)
    new = _name(name, "name")
    if new != group.name and lists.find_group(session, viewer.owner_id, new) is not None:
        raise DuplicateEntry(f"group {new!r} exists")
    group.name = new
    session.flush()
    return group


def delete_group(session: Session, viewer: Viewer, group_id: int) -> None:
    """Delete a group and its members (owners only: a sub-user edits groups, never deletes one)."""
    group = get_group(session, viewer, group_id)
    require_not_subuser(viewer)
    session.execute(delete(GroupMember).where(GroupMember.group_id == group.id))
    session.delete(group)
    session.flush()


def group_members(session: Session, viewer: Viewer, group_id: int) -> Sequence[GroupMember]:
    group = get_group(session, viewer, group_id)
    query = select(GroupMember).where(GroupMember.group_id == group.id).order_by(GroupMember.phone)
    return session.scalars(query).all()


def add_members(
    session: Session,
    viewer: Viewer,
    group_id: int,
    members: Sequence[tuple[str, str]],
    phones: PhoneSettings | None = None,
) -> int:
    """Add (phone, name) pairs; one bad number refuses them all (513 naming it). Returns how many are new."""
    group = get_group(session, viewer, group_id)
    settings = phones or PhoneSettings()
    parsed = [(parse_phone(phone, settings), _member_name(name)) for phone, name in members]
    return lists.add_members(session, group, parsed)


def _member_name(name: str) -> str:
    text = name.strip()[:MAX_NAME_CHARS]
    return text if text.isprintable() else "".join(ch for ch in text if ch.isprintable())


def remove_member(
    session: Session, viewer: Viewer, group_id: int, phone: str, phones: PhoneSettings | None = None
) -> None:
    group = get_group(session, viewer, group_id)
    e164 = parse_phone(phone, phones or PhoneSettings())
    if session.get(GroupMember, (group.id, e164)) is None:
        raise NotFound(f"{e164} is not in the group")
    lists.remove_members(session, group, [e164])


def read_csv_pairs(text: str, value_column: str) -> list[tuple[str, str]]:
    """(phone, value) rows of a CSV: with a header naming `phone` (and optionally `value_column`), or
    without one, phone first. Blank lines are skipped; more than MAX_IMPORT_ROWS rows are refused."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    rows = [row for row in reader if any(cell.strip() for cell in row)]
    if len(rows) > MAX_IMPORT_ROWS:
        raise InvalidParameter("csv", f"at most {MAX_IMPORT_ROWS} rows at once")
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    if "phone" in header:
        phone_at = header.index("phone")
        value_at = header.index(value_column) if value_column in header else None
        rows = rows[1:]
    else:
        phone_at, value_at = 0, 1
    return [(_cell(row, phone_at), _cell(row, value_at)) for row in rows]


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


# --- do-not-call ---------------------------------------------------------------------------------------


def _dnc_scope(viewer: Viewer, global_list: bool) -> int | None:
    if global_list:
        require_admin(viewer)
        return None
    if viewer.role == Role.ADMINISTRATOR:
        raise InvalidParameter("global", "an administrator manages the global list (global=true)")
    return viewer.owner_id


def list_do_not_call(
    session: Session, viewer: Viewer, *, global_list: bool = False, limit: int = DEFAULT_PAGE, after: int = 0
) -> list[DoNotCall]:
    """The account's entries (or the global list, administrators only), by id after `after`."""
    account_id = _dnc_scope(viewer, global_list)
    scope = DoNotCall.account_id.is_(None) if account_id is None else DoNotCall.account_id == account_id
    query = select(DoNotCall).where(scope, DoNotCall.id > after).order_by(DoNotCall.id)
    query = query.limit(_page_size(limit))
    return list(session.scalars(query))


def add_do_not_call(
    session: Session,
    viewer: Viewer,
    entries: Sequence[tuple[str, str]],
    now: dt.datetime,
    *,
    global_list: bool = False,
    phones: PhoneSettings | None = None,
) -> list[DoNotCall]:
    """Block (phone, note) pairs for the account (or everyone); one bad number refuses them all."""
    account_id = _dnc_scope(viewer, global_list)
    settings = phones or PhoneSettings()
    parsed = [(parse_phone(phone, settings), note.strip()[:500]) for phone, note in entries]
    return [lists.add_do_not_call(session, e164, now, account_id, note) for e164, note in parsed]


def import_do_not_call(
    session: Session,
    viewer: Viewer,
    entries: Sequence[tuple[str, str]],
    now: dt.datetime,
    *,
    global_list: bool = False,
    phones: PhoneSettings | None = None,
) -> int:
    """add_do_not_call() for a whole file; answers how many numbers were not on the list before."""
    account_id = _dnc_scope(viewer, global_list)
    scope = DoNotCall.account_id.is_(None) if account_id is None else DoNotCall.account_id == account_id
    before = session.scalar(select(func.count()).select_from(DoNotCall).where(scope)) or 0
    add_do_not_call(session, viewer, entries, now, global_list=global_list, phones=phones)
    after = session.scalar(select(func.count()).select_from(DoNotCall).where(scope)) or 0
    return int(after) - int(before)


def remove_do_not_call(
    session: Session,
    viewer: Viewer,
    phone: str,
    *,
    global_list: bool = False,
    phones: PhoneSettings | None = None,
) -> None:
    """Unblock a number (owners and administrators only: a sub-user may block, never unblock)."""
    if viewer.role == Role.SUBUSER:
        raise Forbidden("only the account owner removes do-not-call entries")
    account_id = _dnc_scope(viewer, global_list)
    if lists.remove_do_not_call(session, parse_phone(phone, phones or PhoneSettings()), account_id) == 0:
        raise NotFound("the number is not on the list")


# --- ledger --------------------------------------------------------------------------------------------


def list_ledger(
    session: Session, viewer: Viewer, *, limit: int = DEFAULT_PAGE, before_id: int | None = None
) -> list[LedgerEntry]:
    """Ledger entries, newest first (page with `before_id`): the whole account's for its owner, a
    sub-user's own for a sub-user."""
    query = select(LedgerEntry).where(LedgerEntry.account_id == viewer.owner_id)
    if viewer.role == Role.SUBUSER:
        query = query.where(LedgerEntry.user_id == viewer.user_id)
    if before_id is not None:
        query = query.where(LedgerEntry.id < before_id)
    return list(session.scalars(query.order_by(LedgerEntry.id.desc()).limit(_page_size(limit))))


def top_up(
    session: Session, viewer: Viewer, account_id: int, amount: int, reference: str, now: dt.datetime
) -> LedgerEntry:
    """An administrator credits an owner's balance. `reference` (a payment or invoice number) is kept
    as the entry's note and must be new for that account, so a retried request cannot pay twice."""
    require_admin(viewer)
    target = session.get(Account, account_id)
    if target is None or target.role != Role.OWNER:
        raise NotFound(f"no owner account {account_id}")
    if not 0 < amount <= MAX_MICROS:
        raise InvalidParameter("amount", f"a top-up is 1 to {MAX_MICROS} micro-units")
    ref = _name(reference, "reference")
    seen = session.scalar(
        select(LedgerEntry.id).where(
            LedgerEntry.account_id == account_id,
            LedgerEntry.kind == EntryKind.TOPUP.value,
            LedgerEntry.note == ref,
        )
    )
    if seen is not None:
        raise DuplicateEntry(f"reference {ref!r} was already credited")
    return ledger.top_up(session, account_id, amount, now, note=ref)
