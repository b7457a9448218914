"""Listing messages: what a viewer may see (message_scope), filters, cursor pages, one message."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from api.core.errors import InvalidParameter
from api.core.manage.base import (
    Viewer,
    account_of,
)
from coded.statuses import FIRST_FAILURE
from store import queue
from store.models import (
    Message,
    Role,
)

MAX_PAGE = 500
DEFAULT_PAGE = 50


class InvalidCursor(InvalidParameter):
    def __init__(self, detail: str = "") -> None:
        super().__init__("cursor", detail or "the cursor was not made by this API")




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


def page_size(limit: int) -> int:
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
    query = query.order_by(Message.created_at.desc(), Message.id.desc()).limit(page_size(limit) + 1)
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
