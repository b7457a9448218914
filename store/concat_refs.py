"""Concatenation references of long SMS, allocated per destination from a counter (sms.sender).

    first = allocate(session, {"+12505553000": 3})   # {"+12505553000": 41}: this batch has 41, 42, 43

The counter is bumped by one upsert per destination in the caller's transaction (INSERT ... ON CONFLICT
DO UPDATE ... RETURNING on SQLite and PostgreSQL): atomic, and on PostgreSQL the row stays locked until
the caller commits, so several senders that claim messages to one handset at once take turns and never
get the same values. Destinations are bumped in sorted order, so two such transactions cannot deadlock.
The reference of the n-th message to a destination is n modulo 2^bits: no reuse within 256 (8-bit)
or 65,536 (16-bit) consecutive messages to one handset.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.models import ConcatCounter


def allocate(session: Session, counts: Mapping[str, int]) -> dict[str, int]:
    """Reserve `counts[destination]` consecutive counter values per destination; the first of each."""
    insert_of = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    first: dict[str, int] = {}
    for destination in sorted(counts):
        count = counts[destination]
        if count < 1:
            continue
        insert = insert_of(ConcatCounter).values(destination=destination, counter=count)
        upsert = insert.on_conflict_do_update(index_elements=["destination"],
                                              set_={"counter": ConcatCounter.counter + count})
        last: int = session.execute(upsert.returning(ConcatCounter.counter)).scalar_one()
        first[destination] = last - count
    return first


def reference(counter: int, bits: int) -> int:
    """The concatenation reference of a counter value: its low `bits` bits (8 or 16)."""
    return counter % (1 << bits)
