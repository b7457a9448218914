"""The wall clock of the processes that need one: `utc_now()`, the current time, aware UTC.

The one copy (issue 14: it was written in six modules). Pure code never calls it: it takes `now` as an
argument (a datetime, or a `Callable[[], dt.datetime]` defaulting to this function), so tests pass their
own clock. A leaf module (standard library only): every package may import it.
"""

from __future__ import annotations

import datetime as dt


def utc_now() -> dt.datetime:
    """The current time, aware UTC."""
    return dt.datetime.now(dt.UTC)
