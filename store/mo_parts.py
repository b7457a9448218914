"""Parts of concatenated incoming SMS, stored as they arrive until their message is whole (sms.inbound).

    stored = add_part(session, GroupKey("+12505553000", "+12505550100", 42, 2), 1, part, now)
    if stored is not None:             # this part completed the message: its parts, in order, group gone
        ...
    for group_id in overdue(session, now - timeout):
        taken = take(session, group_id)  # the parts that arrived; None when another node took it first

The group row is the lock: add_part upserts it (PostgreSQL's ON CONFLICT DO UPDATE locks the row, so two
nodes that receive the two parts of one message at once take turns, and the second sees the first's
part; SQLite's writers take turns anyway), then counts the parts in the same transaction. A part that
arrives twice (the SMSC redelivers when its deliver_sm_resp was lost) is stored once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from store.db import upsert_insert
from store.models import MoGroup, MoPart


@dataclass(frozen=True)
class GroupKey:
    """What identifies one concatenated message: sender, recipient, reference and part count."""

    source: str
    destination: str
    reference: int
    total: int


@dataclass(frozen=True)
class StoredPart:
    """One part as it was received."""

    seq: int
    short_message: bytes
    data_coding: int
    esm_class: int


@dataclass(frozen=True)
class Taken:
    """The parts of a message taken out of the store (whole, or overdue)."""

    key: GroupKey
    first_at: dt.datetime
    parts: tuple[StoredPart, ...]
    """In sequence order; fewer than key.total when the message is incomplete."""


def _lock_group(session: Session, key: GroupKey, now: dt.datetime) -> int:
    """The group's id, its row created or locked (the upsert's update is a no-op that takes the lock)."""
    insert = upsert_insert(session)(MoGroup).values(source=key.source, destination=key.destination,
                                              reference=key.reference, total=key.total, first_at=now)
    upsert = insert.on_conflict_do_update(index_elements=["source", "destination", "reference", "total"],
                                          set_={"total": insert.excluded.total})
    group_id: int = session.execute(upsert.returning(MoGroup.id)).scalar_one()
    return group_id


def add_part(session: Session, key: GroupKey, part: StoredPart, now: dt.datetime) -> Taken | None:
    """Store one part (once, however often it arrives); when it completes its message, take the message
    out of the store and return it."""
    group_id = _lock_group(session, key, now)
    insert = upsert_insert(session)(MoPart).values(
        group_id=group_id, seq=part.seq, short_message=part.short_message, data_coding=part.data_coding,
        esm_class=part.esm_class, received_at=now)
    session.execute(insert.on_conflict_do_nothing(index_elements=["group_id", "seq"]))
    stored = session.scalar(select(func.count()).select_from(MoPart).where(MoPart.group_id == group_id))
    if (stored or 0) < key.total:
        return None
    return take(session, group_id)


def overdue(session: Session, started_before: dt.datetime, limit: int = 100) -> list[int]:
    """Groups whose first part arrived before `started_before`, oldest first."""
    query = (select(MoGroup.id).where(MoGroup.first_at < started_before).order_by(MoGroup.first_at)
             .limit(limit))
    return list(session.scalars(query))


def take(session: Session, group_id: int) -> Taken | None:
    """Remove a group and return its parts; None when it is gone (another transaction took it)."""
    group = session.scalar(select(MoGroup).where(MoGroup.id == group_id).with_for_update()
                           .execution_options(populate_existing=True))
    if group is None:
        return None
    rows: Sequence[MoPart] = session.scalars(
        select(MoPart).where(MoPart.group_id == group_id).order_by(MoPart.seq)).all()
    parts = tuple(StoredPart(p.seq, p.short_message, p.data_coding, p.esm_class) for p in rows)
    taken = Taken(GroupKey(group.source, group.destination, group.reference, group.total), group.first_at,
                  parts)
    session.execute(delete(MoPart).where(MoPart.group_id == group_id))
    session.execute(delete(MoGroup).where(MoGroup.id == group_id))
    return taken


def pending(session: Session) -> int:
    """Messages waiting for parts."""
    return session.scalar(select(func.count()).select_from(MoGroup)) or 0
