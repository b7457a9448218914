"""store.db.retrying: a transaction PostgreSQL rolled back as a deadlock victim (40P01) or for a
serialization failure (40001) runs again, up to the limit; any other failure is raised at once."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from store.db import conflicted, retrying
from store.errors import StoreError


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _failure(sqlstate: str) -> StoreError:
    """What Database.transaction() raises for a driver error: a StoreError from the DBAPIError."""
    error = StoreError("database error")
    error.__cause__ = OperationalError("COMMIT", {}, _DriverError(sqlstate))
    return error


@pytest.mark.parametrize(("sqlstate", "expected"), [("40P01", True), ("40001", True), ("23505", False)])
def test_conflicts_are_found_through_the_cause_chain(sqlstate: str, expected: bool) -> None:
    assert conflicted(_failure(sqlstate)) is expected
    assert conflicted(ValueError("not a database error")) is False


def test_a_deadlock_victim_runs_again() -> None:
    runs: list[int] = []

    def transaction() -> str:
        runs.append(1)
        if len(runs) < 3:
            raise _failure("40P01")
        return "committed"

    assert retrying(transaction, attempts=3) == "committed" and len(runs) == 3


def test_the_last_conflict_and_any_other_failure_are_raised() -> None:
    runs: list[int] = []

    def always(sqlstate: str) -> None:
        runs.append(1)
        raise _failure(sqlstate)

    with pytest.raises(StoreError):
        retrying(lambda: always("40001"), attempts=2)
    assert len(runs) == 2
    runs.clear()
    with pytest.raises(StoreError):
        retrying(lambda: always("23505"), attempts=5)
    assert len(runs) == 1
