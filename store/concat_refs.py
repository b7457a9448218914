"""Concatenation references of long SMS, allocated per destination from a counter (sms.sender).

    first = allocate(session, {"+12505553000": 3})   # {"+12505553000": 41}: this batch has 41, 42, 43

The counters are bumped by one statement in the caller's transaction (a multi-row INSERT ... ON CONFLICT
DO UPDATE ... RETURNING on SQLite and PostgreSQL): atomic, and on PostgreSQL the rows stay locked until
the caller commits, so several senders that claim messages to one handset at once take turns and never
get the same values. Destinations are bumped in sorted order, so two such transactions cannot deadlock.
The reference of the n-th message to a destination is n modulo 2^bits: no reuse within 256 (8-bit)
or 65,536 (16-bit) consecutive messages to one handset.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from store.db import upsert_insert
from store.models import ConcatCounter


def allocate(session: Session, counts: Mapping[str, int]) -> dict[str, int]:
    """Reserve `counts[destination]` consecutive counter values per destination; the first of each."""
    rows = [{"destination": d, "counter": counts[d]} for d in sorted(counts) if counts[d] > 0]
    if not rows:
        return {}
    insert = upsert_insert(session)(ConcatCounter).values(rows)
    upsert = insert.on_conflict_do_update(index_elements=["destination"],
                                          set_={"counter": ConcatCounter.counter + insert.excluded.counter})
    result = session.execute(upsert.returning(ConcatCounter.destination, ConcatCounter.counter))
    return {destination: last - counts[destination] for destination, last in result}


def reference(counter: int, bits: int) -> int:
    """The concatenation reference of a counter value: its low `bits` bits (8 or 16)."""
    return counter % (1 << bits)
