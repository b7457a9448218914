"""The dialer's pure rules: the calls-per-second token bucket and the retry policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.dialer import CallJob, RateLimiter, flow_config, retry_delay
from ivr.flow import InvalidFlowConfig
from ivr.outcome import CallOutcome
from ivr.settings import DialerSettings


def outcome(code: int) -> CallOutcome:
    return CallOutcome(code=code, text="x", digit=None, duration_s=0, sip_code=None, call_id=None,
                       answered=code == 200)


def test_bucket_allows_a_burst_then_spaces_calls() -> None:
    bucket = RateLimiter(rate=10.0, burst=3)
    assert [bucket.delay(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.delay(0.0) == pytest.approx(0.1)
    assert bucket.delay(0.05) == pytest.approx(0.05)
    assert bucket.delay(0.1) == 0.0


def test_bucket_refills_to_its_burst_only() -> None:
    bucket = RateLimiter(rate=1.0, burst=2)
    bucket.delay(0.0)
    bucket.delay(0.0)
    assert bucket.delay(1000.0) == 0.0
    assert bucket.delay(1000.0) == 0.0
    assert bucket.delay(1000.0) > 0.0


@given(st.floats(min_value=0.5, max_value=500.0), st.integers(min_value=1, max_value=50),
       st.lists(st.floats(min_value=0.0, max_value=0.2), min_size=1, max_size=300))
def test_bucket_never_exceeds_rate_plus_burst(rate: float, burst: int, gaps: list[float]) -> None:
    bucket, now, started = RateLimiter(rate, burst), 0.0, []
    for gap in gaps:
        now += gap
        wait = bucket.delay(now)
        while wait > 0:
            now += wait
            wait = bucket.delay(now)
        started.append(now)
    assert len(started) <= burst + rate * (started[-1] - started[0]) + 1e-6


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_bucket_refuses_bad_parameters(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, burst)


def test_busy_and_no_answer_retry_until_the_count_is_spent() -> None:
    settings = DialerSettings(retries=2, retry_delay_s=30.0)
    assert retry_delay(outcome(600), 1, settings) == 30.0
    assert retry_delay(outcome(601), 2, settings) == 30.0
    assert retry_delay(outcome(600), 3, settings) is None


@pytest.mark.parametrize("code", [200, 602, 603, 604])
def test_other_outcomes_are_final(code: int) -> None:
    assert retry_delay(outcome(code), 1, DialerSettings(retries=5)) is None


def test_a_bad_repeat_fails_before_dialling() -> None:
    job = CallJob(job_id="j", uri="sip:1@127.0.0.1", prompt=Path("p.wav"), repeat=99)
    with pytest.raises(InvalidFlowConfig):
        flow_config(job, DialerSettings())


def test_flow_config_carries_the_job_and_the_settings() -> None:
    job = CallJob(job_id="j", uri="sip:1@127.0.0.1", prompt=Path("p.wav"), repeat=2, response=True,
                  confirm_prompt=Path("ok.wav"))
    config = flow_config(job, DialerSettings(response_timeout_s=5.0, max_call_s=60.0))
    assert (config.repeat, config.response, config.confirm) == (2, True, True)
    assert (config.response_timeout_s, config.max_call_s) == (5.0, 60.0)
