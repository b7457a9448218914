"""Per-account lists: groups of numbers, do-not-call entries (global and per account), virtual numbers.

Phone numbers are stored as the service normalised them (E.164 with '+'); lookups compare exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, bindparam, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store import ledger
from store.db import IN_LIST_MAX
from store.errors import DuplicateEntry
from store.models import Base, DoNotCall, Group, GroupMember, VirtualNumber


def create_group(session: Session, account_id: int, name: str, now: dt.datetime) -> Group:
    """A new, empty group; DuplicateEntry when the account already has one of that name."""
    group = Group(account_id=account_id, name=name, created_at=now)
    try:
        with session.begin_nested():
            session.add(group)
    except IntegrityError:
        raise DuplicateEntry(f"group {name!r} exists") from None
    return group


def find_group(session: Session, account_id: int, name: str) -> Group | None:
    return session.scalar(select(Group).where(Group.account_id == account_id, Group.name == name))


def add_members(session: Session, group: Group, members: Iterable[tuple[str, str]]) -> int:
    """Add (phone, name) pairs; numbers already in the group get the new name. Returns how many are new."""
    existing = {
        m.phone: m for m in session.scalars(select(GroupMember).where(GroupMember.group_id == group.id))
    }
    added = 0
    for phone, name in members:
        if phone in existing:
            existing[phone].name = name
            continue
        existing[phone] = GroupMember(group_id=group.id, phone=phone, name=name)
        session.add(existing[phone])
        added += 1
    session.flush()
    return added


def remove_members(session: Session, group: Group, phones: Iterable[str]) -> None:
    session.execute(
        delete(GroupMember).where(GroupMember.group_id == group.id, GroupMember.phone.in_(list(phones)))
    )


def group_phones(session: Session, account_id: int, name: str) -> list[str] | None:
    """The numbers of the account's group `name`, in a stable order; None when there is no such group."""
    group = find_group(session, account_id, name)
    if group is None:
        return None
    query = select(GroupMember.phone).where(GroupMember.group_id == group.id).order_by(GroupMember.phone)
    return list(session.scalars(query))


def list_groups(session: Session, account_id: int) -> Sequence[Group]:
    return session.scalars(select(Group).where(Group.account_id == account_id).order_by(Group.name)).all()


def add_do_not_call(
    session: Session, phone: str, now: dt.datetime, account_id: int | None = None, note: str = ""
) -> DoNotCall:
    """Block `phone` for everyone (account_id None) or for one account; adding twice is harmless."""
    scope = DoNotCall.account_id.is_(None) if account_id is None else DoNotCall.account_id == account_id
    entry = session.scalar(select(DoNotCall).where(DoNotCall.phone == phone, scope))
    if entry is None:
        entry = DoNotCall(account_id=account_id, phone=phone, note=note, created_at=now)
        session.add(entry)
        session.flush()
    return entry


def remove_do_not_call(session: Session, phone: str, account_id: int | None = None) -> int:
    scope = DoNotCall.account_id.is_(None) if account_id is None else DoNotCall.account_id == account_id
    result = session.execute(delete(DoNotCall).where(DoNotCall.phone == phone, scope))
    return int(getattr(result, "rowcount", 0))


_DO_NOT_CALL = Base.metadata.tables[DoNotCall.__tablename__]
_BLOCKED = select(_DO_NOT_CALL.c.phone, _DO_NOT_CALL.c.account_id).where(
    _DO_NOT_CALL.c.phone.in_(bindparam("phones", expanding=True)),
    or_(
        _DO_NOT_CALL.c.account_id.is_(None),
        _DO_NOT_CALL.c.account_id.in_(bindparam("owners", expanding=True)),
    ),
)
"""Built once: the submission path checks every recipient."""


def blocked(session: Session | Connection, account_id: int, phones: Iterable[str]) -> set[str]:
    """The numbers of `phones` that `account_id` must not reach (global list or its own)."""
    return blocked_for(session, [account_id], phones)[account_id]


def blocked_for(
    session: Session | Connection, account_ids: Iterable[int], phones: Iterable[str]
) -> dict[int, set[str]]:
    """blocked() for several accounts in one statement: {account: numbers of `phones` it must not reach}."""
    owners = sorted(set(account_ids))
    out: dict[int, set[str]] = {owner: set() for owner in owners}
    wanted = sorted(set(phones))
    if not wanted or not owners:
        return out
    conn = ledger.core(session)
    for start in range(0, len(wanted), IN_LIST_MAX):  # drivers bound the parameters of one statement
        found = conn.execute(_BLOCKED, {"phones": wanted[start:start + IN_LIST_MAX], "owners": owners})
        for phone, owner in found:
            for target in owners if owner is None else [owner]:
                out[target].add(str(phone))
    return out


def set_virtual_number(
    session: Session, number: str, account_id: int, webhook_url: str, now: dt.datetime
) -> VirtualNumber:
    """Assign `number` to an account with its incoming-SMS webhook (replacing any earlier assignment)."""
    row = session.get(VirtualNumber, number)
    if row is None:
        row = VirtualNumber(number=number, created_at=now)
        session.add(row)
    row.account_id, row.webhook_url = account_id, webhook_url
    session.flush()
    return row


def virtual_number(session: Session, number: str) -> VirtualNumber | None:
    """Who receives SMS sent to `number`, or None when it is not ours."""
    return session.get(VirtualNumber, number)


def account_numbers(session: Session, account_id: int) -> Sequence[VirtualNumber]:
    query = select(VirtualNumber).where(VirtualNumber.account_id == account_id).order_by(VirtualNumber.number)
    return session.scalars(query).all()


def add_virtual_number(
    session: Session, number: str, account_id: int, webhook_url: str, now: dt.datetime
) -> VirtualNumber:
    """Assign a number that is nobody's yet; DuplicateEntry when it is already assigned (to anyone)."""
    row = VirtualNumber(number=number, account_id=account_id, webhook_url=webhook_url, created_at=now)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise DuplicateEntry(f"{number} is already assigned") from None
    return row


def remove_virtual_number(session: Session, number: str) -> int:
    """Release a number (incoming SMS to it are dropped from now on); answers how many rows went."""
    result = session.execute(delete(VirtualNumber).where(VirtualNumber.number == number))
    return int(getattr(result, "rowcount", 0))


def all_numbers(session: Session) -> Sequence[VirtualNumber]:
    """Every assigned number, for the operator's listing."""
    return session.scalars(select(VirtualNumber).order_by(VirtualNumber.number)).all()
