"""Reads the GUI needs beyond api.core.manage: message search, the CSV export, and per-day report figures.

Visibility and filters are api.core.manage's own (`manage.message_scope`, `manage.filter_messages`), so the
GUI shows a login exactly what the v1 API would; this module only adds a free-text search and the report's
aggregation. The aggregation (`aggregate`) is pure: rows in, figures out.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from api.core import manage
from api.core.manage import MessageFilter, Page, Viewer
from coded import statuses
from store.models import Message, MessageKind

CALL_KINDS = frozenset({MessageKind.TTS.value, MessageKind.VOICE.value, MessageKind.VTTS.value})
NOT_ATTEMPTED = frozenset({statuses.DO_NOT_CALL[0], statuses.CANCELLED[0]})
"""Do-not-call and cancelled messages: never dialled, so outside the answer rate."""
MAX_REPORT_DAYS = 366
MAX_EXPORT_ROWS = 100_000
CSV_COLUMNS = ("id", "created_at", "kind", "phone", "callerid", "status_code", "status_text", "response",
               "duration_s", "cost", "currency", "user_id", "job_id", "finished_at")


def _searched(text: str | None) -> list[ColumnElement[bool]]:
    if not text or not text.strip():
        return []
    needle = f"%{text.strip()[:100]}%"
    return [or_(Message.id.like(needle), Message.phone.like(needle), Message.body.ilike(needle),
                Message.status_text.ilike(needle), Message.callerid.like(needle))]


def _query(viewer: Viewer, f: MessageFilter, search: str | None) -> object:
    base = select(Message).where(*manage.message_scope(viewer), *_searched(search))
    return manage.filter_messages(base, f)


def search_messages(
    session: Session, viewer: Viewer, f: MessageFilter, search: str | None, *, limit: int = 50,
    cursor: str | None = None,
) -> Page[Message]:
    """manage.list_messages with a free-text search over ID, phone, caller ID, text and status text."""
    query = _query(viewer, f, search)
    if cursor:
        created_at, message_id = manage.decode_cursor(cursor)
        query = query.where(or_(  # type: ignore[attr-defined]
            Message.created_at < created_at, and_(Message.created_at == created_at, Message.id < message_id)))
    query = query.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit + 1)  # type: ignore[attr-defined]
    rows = list(session.scalars(query))
    items = rows[:limit]
    more = len(rows) > limit
    return Page(items, manage.encode_cursor(items[-1].created_at, items[-1].id) if more else None)


def export_csv(session: Session, viewer: Viewer, f: MessageFilter, search: str | None) -> Iterator[str]:
    """The filtered messages as CSV text chunks (a header, then up to MAX_EXPORT_ROWS rows, newest first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    query = _query(viewer, f, search).order_by(  # type: ignore[attr-defined]
        Message.created_at.desc(), Message.id.desc()).limit(MAX_EXPORT_ROWS)
    for count, message in enumerate(session.scalars(query.execution_options(yield_per=500)), 1):
        writer.writerow(csv_row(message))
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_row(m: Message) -> list[str]:
    """One message as export cells (money in currency units with six decimals, UTC ISO times)."""
    cost = "" if m.cost is None else f"{m.cost / 1_000_000:.6f}"
    finished = m.finished_at.isoformat() if m.finished_at else ""
    return [m.id, m.created_at.isoformat(), m.kind, m.phone, m.callerid, str(m.status_code), m.status_text,
            m.response, "" if m.duration_s is None else str(m.duration_s), cost, m.currency,
            str(m.user_id), m.job_id, finished]


# --- reports -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    """What a report needs of one message."""

    created_at: dt.datetime
    kind: str
    status_code: int
    finished: bool
    response: str
    cost: int


@dataclass
class Day:
    """One day's figures."""

    day: dt.date
    by_kind: Counter[str] = field(default_factory=Counter)
    by_outcome: Counter[str] = field(default_factory=Counter)
    """success | failure | pending."""
    calls_attempted: int = 0
    calls_answered: int = 0
    spend: int = 0
    """Micro-units charged."""

    @property
    def answer_rate(self) -> float | None:
        return self.calls_answered / self.calls_attempted if self.calls_attempted else None


@dataclass
class Report:
    days: list[Day]
    responses: Counter[str]
    """Key pressed -> how many answered calls pressed it ('' excluded)."""

    @property
    def totals(self) -> Day:
        total = Day(self.days[0].day if self.days else dt.date.min)
        for day in self.days:
            total.by_kind.update(day.by_kind)
            total.by_outcome.update(day.by_outcome)
            total.calls_attempted += day.calls_attempted
            total.calls_answered += day.calls_answered
            total.spend += day.spend
        return total


def outcome_of(row: ReportRow) -> str:
    if not row.finished:
        return "pending"
    return "success" if statuses.is_success(row.status_code) else "failure"


def aggregate(rows: Iterable[ReportRow], first: dt.date, last: dt.date) -> Report:
    """Per-day figures from `first` to `last` inclusive (UTC days); rows outside are ignored."""
    if (last - first).days >= MAX_REPORT_DAYS:
        first = last - dt.timedelta(days=MAX_REPORT_DAYS - 1)
    days = {first + dt.timedelta(days=i): Day(first + dt.timedelta(days=i))
            for i in range((last - first).days + 1)}
    responses: Counter[str] = Counter()
    for row in rows:
        day = days.get(row.created_at.astimezone(dt.UTC).date())
        if day is None:
            continue
        day.by_kind[row.kind] += 1
        day.by_outcome[outcome_of(row)] += 1
        day.spend += row.cost
        if row.kind in CALL_KINDS and row.finished and row.status_code not in NOT_ATTEMPTED:
            day.calls_attempted += 1
            day.calls_answered += row.status_code == statuses.ANSWERED
            if row.status_code == statuses.ANSWERED and row.response:
                responses[row.response] += 1
    return Report(list(days.values()), responses)


def report_rows(
    session: Session, viewer: Viewer, first: dt.date, last: dt.date, user_id: int | None = None
) -> Iterator[ReportRow]:
    """The viewer's messages created from `first` to `last` inclusive (UTC), as report rows."""
    since = dt.datetime.combine(first, dt.time(), dt.UTC)
    until = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC)
    columns = select(Message.created_at, Message.kind, Message.status_code, Message.finished_at,
                     Message.response, Message.cost)
    query = manage.filter_messages(columns.where(*manage.message_scope(viewer)),
                                   MessageFilter(since=since, until=until, user_id=user_id))
    rows = session.execute(query)
    for created, kind, code, finished, response, cost in rows:
        yield ReportRow(created, kind, code, finished is not None, response or "", cost or 0)
