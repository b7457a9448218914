"""The outbox: status callbacks and incoming-SMS webhooks to POST, written in the transaction that caused
them, so a callback exists exactly when its outcome does.

A sender drains it across processes and machines with the queue's lease idea: `claim_due()` pushes each
row's `next_attempt_at` forward by the lease, so a sender that dies leaves the row to come due again;
`delivered()` or `failed()` (with the next time to try, from `backoff()`) ends the attempt.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, insert, not_, or_, select, update
from sqlalchemy.orm import Session

from store.models import OutboxItem

CALLBACK = "callback"
WEBHOOK = "webhook"
MAX_ATTEMPTS = 12
_INSERT = insert(OutboxItem.metadata.tables[OutboxItem.__tablename__])


def backoff(attempts: int, base_s: float = 30.0, cap_s: float = 3600.0) -> dt.timedelta:
    """Wait before the next try after `attempts` failures: 30 s, 60 s, 120 s, ... capped at an hour."""
    return dt.timedelta(seconds=min(cap_s, base_s * 2 ** max(0, attempts - 1)))


def enqueue(
    session: Session,
    *,
    kind: str,
    url: str,
    body: str,
    now: dt.datetime,
    secret_ref: str = "",
    message_id: str | None = None,
) -> OutboxItem:
    """Add a POST of `body` (JSON text) to `url`, due now."""
    fields = row(kind=kind, url=url, body=body, now=now, secret_ref=secret_ref, message_id=message_id)
    item = OutboxItem(**fields)
    session.add(item)
    session.flush()
    return item


def row(
    *, kind: str, url: str, body: str, now: dt.datetime, secret_ref: str = "", message_id: str | None = None
) -> dict[str, Any]:
    """The columns of one outbox row as enqueue() writes it (enqueue_rows() writes many in one statement)."""
    return {"kind": kind, "url": url, "body": body, "secret_ref": secret_ref, "message_id": message_id,
            "attempts": 0, "next_attempt_at": now, "last_error": "", "created_at": now}


def enqueue_rows(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Add many POSTs (rows built by row()) in one statement."""
    if rows:
        session.flush()
        session.connection().execute(_INSERT, list(rows))


def destination(url: str) -> str:
    """The destination a callback URL names, `scheme://host[:port]` lowercased: the key of the sender's
    per-destination limit. A URL without `://` is its own destination."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        return url.strip().lower()
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return f"{scheme}://{netloc}".lower()


def _to_destination(dest: str) -> ColumnElement[bool]:
    """Rows whose URL names `dest` (as destination() computes it, compared without case)."""
    url = func.lower(func.trim(OutboxItem.url))
    return or_(url == dest, *(url.startswith(dest + tail, autoescape=True) for tail in ("/", "?", "#")))


def claim_due(
    session: Session,
    now: dt.datetime,
    lease_s: float = 60.0,
    limit: int = 50,
    *,
    exclude: Collection[str] = (),
) -> list[OutboxItem]:
    """Take up to `limit` undelivered rows due now; each is hidden from other senders for `lease_s`.
    Rows to the destinations in `exclude` (see destination()) are left for later."""
    due = (
        select(OutboxItem.id)
        .where(OutboxItem.delivered_at.is_(None), OutboxItem.next_attempt_at <= now,
               *(not_(_to_destination(dest)) for dest in exclude))
        .order_by(OutboxItem.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(OutboxItem)
        .where(OutboxItem.id.in_(due.scalar_subquery()))
        .values(next_attempt_at=now + dt.timedelta(seconds=lease_s), attempts=OutboxItem.attempts + 1)
        .returning(OutboxItem)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return list(session.scalars(statement))


def release(session: Session, item_id: int, now: dt.datetime) -> None:
    """Undo a claim that was not tried: the row is due again at `now`, the claim not counted as an attempt."""
    session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id, OutboxItem.attempts > 0)
        .values(next_attempt_at=now, attempts=OutboxItem.attempts - 1)
    )


Claim = tuple[int, int]
"""One claim of a row: (row id, its `attempts` after the claim). Every claim counts an attempt, so the
pair names one sender's hold: a row claimed again by another sender (after the lease ran out) has a
higher count, and the first sender's renewals and results no longer match it (the fencing token)."""


def claim_of(item: OutboxItem) -> Claim:
    return item.id, item.attempts


def renew(session: Session, claims: Collection[Claim], now: dt.datetime, lease_s: float) -> set[Claim]:
    """Extend the leases of `claims` (store.lease's renewal); returns the claims still held: undelivered
    and not claimed again since. A missing one was lost: its sender must not record its result."""
    held = {item_id: attempts for item_id, attempts in claims}
    if not held:
        return set()
    rows = session.execute(
        update(OutboxItem)
        .where(OutboxItem.id.in_(held), OutboxItem.delivered_at.is_(None))
        .values(next_attempt_at=now + dt.timedelta(seconds=lease_s))
        .where(_matching(held))
        .returning(OutboxItem.id, OutboxItem.attempts)
        .execution_options(synchronize_session=False)
    )
    return {(row.id, row.attempts) for row in rows}


def _matching(held: dict[int, int]) -> ColumnElement[bool]:
    return or_(*((OutboxItem.id == item_id) & (OutboxItem.attempts == attempts)
                 for item_id, attempts in held.items()))


def delivered(session: Session, item_id: int, now: dt.datetime, *, attempt: int | None = None) -> bool:
    """Mark a row delivered; with `attempt` only while that claim still holds it (True when written)."""
    fenced = () if attempt is None else (OutboxItem.attempts == attempt,)
    result = session.execute(
        update(OutboxItem).where(OutboxItem.id == item_id, *fenced).values(delivered_at=now, last_error="")
    )
    return bool(getattr(result, "rowcount", 1))


def failed(
    session: Session, item_id: int, now: dt.datetime, error: str, max_attempts: int = MAX_ATTEMPTS,
    *, attempt: int | None = None,
) -> bool:
    """Record a failed POST; schedules the next try by backoff(), or gives up after `max_attempts`
    (the row stays, undelivered, with its error, and is never due again). True when it will be retried.
    With `attempt`, nothing is written unless that claim still holds the row (another sender's claim
    since, or a delivery, wins); False then."""
    item = session.get(OutboxItem, item_id, with_for_update=attempt is not None, populate_existing=True)
    if item is None or (attempt is not None and (item.attempts != attempt or item.delivered_at is not None)):
        return False
    item.last_error = error[:2000]
    retry = item.attempts < max_attempts
    item.next_attempt_at = now + backoff(item.attempts) if retry else dt.datetime.max.replace(tzinfo=dt.UTC)
    session.flush()
    return retry


def pending(session: Session) -> int:
    """Rows not yet delivered (for /metrics)."""
    count = session.scalar(
        select(func.count()).select_from(OutboxItem).where(OutboxItem.delivered_at.is_(None))
    )
    return int(count or 0)


def for_message(session: Session, message_id: str) -> Sequence[OutboxItem]:
    return session.scalars(select(OutboxItem).where(OutboxItem.message_id == message_id)).all()
