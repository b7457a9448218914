"""The one billing rule (store.rating.billable_seconds / call_cost, docs/store.md 'Money and the ledger'):
started increments of the exact duration, an answered call at least one increment, an unanswered one
nothing. (These tests were ivr.outcome's, whose copy of the rule billed an answered 0 s call 0 s.)"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.flow import Answered, CallFlow, DigitReceived, Finished, FlowConfig
from store.rating import billable_seconds, call_cost, sms_cost
from store.settings import StoreSettings


@pytest.mark.parametrize(
    ("duration", "increment", "answered", "billed"),
    [
        (0.0, 60, False, 0),
        (0.0, 6, False, 0),
        (-1.0, 60, False, 0),
        (0.0, 60, True, 60),  # answered, hung up at once: one increment (docs/store.md)
        (0.0, 6, True, 6),
        (-1.0, 60, True, 60),
        (0.0004, 60, True, 60),
        (0.2, 60, True, 60),
        (18.4, 60, True, 60),
        (60.0, 60, True, 60),
        (60.0000001, 60, True, 60),
        (60.001, 60, True, 120),
        (18.4, 6, True, 24),
        (18.0, 6, True, 18),
        (17.9999999, 6, True, 18),  # float noise from subtracting clock readings
        (5.0, 6, True, 6),
        (31.0, 6, True, 36),
        (1.0, 1, True, 1),
        (3600.0, 60, False, 0),
        (45, 60, False, 0),
        (1, 60, True, 60),
        (18.2, 6, True, 24),
    ],
)
def test_billable_seconds_round_up_to_the_increment(
    duration: float, increment: int, answered: bool, billed: int
) -> None:
    assert billable_seconds(duration, increment, answered) == billed


def test_an_answered_zero_second_call_costs_one_increment() -> None:
    """The case the two copies disagreed on: answered, 0 s -> one increment, priced as one."""
    assert billable_seconds(0.0, 60) == 60
    assert call_cost(0.0, 15_000, 60) == 15_000
    assert call_cost(0.0, 15_000, 6) == 1_500
    assert call_cost(0.0, 15_000, 60, answered=False) == 0


def test_billable_seconds_default_to_whole_minutes() -> None:
    increment = StoreSettings().billing_increment_s
    assert increment == 60
    assert billable_seconds(61.0, increment) == 120


@pytest.mark.parametrize("increment", [0, -6, True, False])
def test_billable_seconds_refuse_bad_settings(increment: int) -> None:
    with pytest.raises(ValueError):
        billable_seconds(10.0, increment)


@pytest.mark.parametrize("duration", [float("nan"), float("inf"), float("-inf")])
def test_billable_seconds_refuse_a_non_finite_duration(duration: float) -> None:
    with pytest.raises(ValueError):
        billable_seconds(duration, 60)
    with pytest.raises(ValueError):
        billable_seconds(duration, 60, answered=False)


@given(st.floats(0.001, 1e5), st.sampled_from([1, 6, 30, 60]))
def test_billing_never_undercharges_nor_overcharges_by_an_increment(duration: float, increment: int) -> None:
    billed = billable_seconds(duration, increment)
    assert billed % increment == 0
    assert duration - 0.0005 <= billed < duration + increment


@given(st.floats(-1e5, 1e5), st.sampled_from([1, 6, 30, 60]))
def test_an_answered_call_bills_at_least_one_increment_and_an_unanswered_one_nothing(
    duration: float, increment: int
) -> None:
    assert billable_seconds(duration, increment) >= increment
    assert billable_seconds(duration, increment, answered=False) == 0


@given(st.floats(min_value=0, max_value=7200), st.integers(min_value=0, max_value=10**7))
def test_call_cost_never_below_exact_price(duration: float, rate: int) -> None:
    for increment in (6, 60):
        cost = call_cost(duration, rate, increment)
        billed_ms = int(duration * 1000)  # durations count to the millisecond
        assert cost * 60 * 1000 >= billed_ms * rate
        assert cost <= call_cost(duration + increment, rate, increment)


def test_call_cost_rounds_up_to_a_micro_unit() -> None:
    assert call_cost(61, 120_000, 60) == 240_000
    assert call_cost(61, 120_000, 6) == 132_000
    assert call_cost(1, 7, 6) == 1  # 6 s of 7 micro-units a minute is 0.7: one micro-unit
    assert sms_cost(3, 7_500) == 22_500


def test_dentist_reminder_is_billed_by_started_increments() -> None:
    """The worked example of docs/flow.md: answered at 100.0, '1' at 118.6."""
    flow = CallFlow(FlowConfig(repeat=0, response=True))
    flow.handle(Answered(100.0))
    flow.handle(DigitReceived(105.3, "9"))
    finished = flow.handle(DigitReceived(118.6, "1"))[-1]
    assert isinstance(finished, Finished)
    assert billable_seconds(finished.result.duration_s, 60) == 60
    assert billable_seconds(finished.result.duration_s, 6) == 24
