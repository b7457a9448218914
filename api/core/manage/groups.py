"""Groups of recipients and their members."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from api.core.errors import GroupNotFound
from api.core.manage.base import (
    MAX_NAME_CHARS,
    NotFound,
    Viewer,
    require_not_subuser,
    valid_name,
)
from api.core.phones import PhoneSettings, parse_phone
from store import lists
from store.errors import DuplicateEntry
from store.models import (
    Group,
    GroupMember,
)


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
    group = lists.create_group(session, viewer.owner_id, valid_name(name, "name"), now)
    if members:
        add_members(session, viewer, group.id, members, phones)
    return group


def rename_group(session: Session, viewer: Viewer, group_id: int, name: str) -> Group:
    group = get_group(session, viewer, group_id)
    new = valid_name(name, "name")
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
