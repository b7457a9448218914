"""The dialer's rules: the calls-per-second token bucket, the per-account admission (concurrency and
calls per second over every node), a node's free slots, the retry policy, and run_call over a scripted
stand-in of the engine pool (outcome of a call nobody answered at all, cancel before dialling).
The voice worker (api/runtime/worker.py) applies the scheduling rules in its claim; tests/integration/worker
checks them there against real peers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.dialer import (
    Bucket,
    CallJob,
    CallLimits,
    CallReport,
    RateLimiter,
    admit,
    flow_config,
    free_slots,
    retry_delay,
    run_call,
    take_token,
)
from ivr.events import SipEvent
from ivr.flow import InvalidFlowConfig
from ivr.identity import InvalidCallerId
from ivr.outcome import CallOutcome
from ivr.settings import DialerSettings, SipSettings


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


def test_a_stored_bucket_carries_on_where_another_node_left_it() -> None:
    state, waits = Bucket(), []
    for now in (0.0, 0.0, 0.0, 0.5):  # a bucket of 2 at 2/s: two at once, then one each half second
        state, wait = take_token(state, now, rate=2.0, burst=2)
        waits.append(wait)
    assert waits == [0.0, 0.0, pytest.approx(0.5), 0.0]
    assert take_token(Bucket(0.0, 10.0), 9.0, rate=2.0, burst=2)[1] == pytest.approx(0.5)  # a clock behind


def test_admit_fills_the_account_up_to_its_concurrency() -> None:
    limits = CallLimits(max_concurrent=2, calls_per_second=100.0)
    assert admit(limits, in_flight=0, wanted=5, bucket=Bucket(), now=0.0).count == 2
    assert admit(limits, in_flight=1, wanted=5, bucket=Bucket(), now=0.0).count == 1
    held = admit(limits, in_flight=2, wanted=5, bucket=Bucket(), now=0.0)
    assert (held.count, held.wait_s, held.bucket) == (0, None, Bucket())  # a full account takes no token


def test_admit_stops_at_the_rate_and_says_when_to_look_again() -> None:
    limits = CallLimits(max_concurrent=50, calls_per_second=4.0)
    first = admit(limits, in_flight=0, wanted=10, bucket=Bucket(), now=100.0)
    assert first.count == limits.burst == 4 and first.wait_s == pytest.approx(0.25)
    later = admit(limits, in_flight=4, wanted=6, bucket=first.bucket, now=100.25)
    assert later.count == 1 and later.wait_s == pytest.approx(0.25)


@given(st.integers(min_value=1, max_value=20), st.floats(min_value=0.5, max_value=50.0),
       st.lists(st.tuples(st.floats(min_value=0.0, max_value=0.5), st.integers(0, 5), st.integers(0, 30)),
                min_size=1, max_size=100))
def test_admit_never_exceeds_either_limit(concurrent: int, rate: float,
                                          rounds: list[tuple[float, int, int]]) -> None:
    """Claims by any nodes in turn (the store's row lock orders them), calls ending between them."""
    limits, bucket, now, held, starts = CallLimits(concurrent, rate), Bucket(), 0.0, 0, list[float]()
    for gap, ended, wanted in rounds:
        now += gap
        held = max(0, held - ended)
        admission = admit(limits, in_flight=held, wanted=wanted, bucket=bucket, now=now)
        bucket, held = admission.bucket, held + admission.count
        starts += [now] * admission.count
        assert held <= concurrent and admission.count <= wanted
        assert admission.count == min(wanted, concurrent - held + admission.count) or admission.wait_s
    if starts:
        assert len(starts) <= limits.burst + rate * (starts[-1] - starts[0]) + 1e-6


@pytest.mark.parametrize(("concurrent", "rate"), [(0, 1.0), (1, 0.0), (-1, 5.0)])
def test_call_limits_refuse_nonsense(concurrent: int, rate: float) -> None:
    with pytest.raises(ValueError):
        CallLimits(concurrent, rate)


def test_free_slots_of_a_node() -> None:
    assert free_slots(16, 8, 3) == 5  # the engine pool's capacity bounds the setting
    assert free_slots(4, None, 1) == 3
    assert free_slots(4, 8, 6) == 0


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


# --- run_call and Dialer over a scripted stand-in of the engine pool (no sockets, no processes) ---


class ScriptedHandle:
    """A call whose SIP events are a script; commands are recorded."""

    def __init__(self, ref: str, script: list[SipEvent]) -> None:
        self.ref, self.script, self.commands = ref, script, list[str]()
        self._hung_up = asyncio.Event()

    async def events(self) -> AsyncIterator[SipEvent]:
        for event in self.script:
            await asyncio.sleep(0)
            yield replace(event, ref=self.ref, t=time.monotonic())
        if not self.script or self.script[-1].kind != "disconnected":
            await self._hung_up.wait()  # an answered call ends when we hang up
            yield SipEvent(ref=self.ref, kind="disconnected", t=time.monotonic(), sip_code=200)

    async def play(self, wav: Path | str, loop: bool = False) -> None:
        self.commands.append("play")

    async def stop_playback(self) -> None:
        self.commands.append("stop_playback")

    async def record(self, path: Path | str) -> None:
        self.commands.append("record")

    async def hangup(self, code: int | None = None) -> None:
        self.commands.append("hangup")
        self._hung_up.set()


class ScriptedPool:
    """Stands in for ivr.pool.EnginePool: every call follows `script`; `gate` holds place_call."""

    def __init__(self, script: list[SipEvent], gate: asyncio.Event | None = None) -> None:
        self.settings = SipSettings(ring_timeout_s=5.0)
        self.script, self.gate, self.placed = script, gate, list[ScriptedHandle]()

    async def place_call(self, uri: str, *, caller_id: str = "", display_name: str = "",
                         headers: Mapping[str, str] | None = None) -> ScriptedHandle:
        if self.gate is not None:
            await self.gate.wait()
        self.placed.append(ScriptedHandle(f"c{len(self.placed) + 1}", self.script))
        return self.placed[-1]


def ev(kind: str, **fields: object) -> SipEvent:
    return SipEvent(ref="", kind=kind, t=0.0, **fields)  # type: ignore[arg-type]


JOB = CallJob(job_id="j", uri="sip:1@127.0.0.1", prompt=Path("p.wav"), response=True)
FAST = DialerSettings(response_timeout_s=0.05, max_call_s=5.0, hangup_grace_s=1.0)


def run(script: list[SipEvent], **kwargs: object) -> CallReport:
    return asyncio.run(run_call(ScriptedPool(script), JOB, FAST, **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize("code", [408, 487])
def test_no_response_at_all_is_a_network_failure(code: int) -> None:
    report = run([ev("calling", call_id="x"), ev("disconnected", sip_code=code, reason="ring timeout",
                                                 call_id="x")])
    assert (report.outcome.code, report.outcome.text) == (603, "Call failed (network error)")
    assert (report.outcome.sip_code, report.outcome.call_id) == (code, "x")  # kept beside the status


def test_ringing_then_the_ring_timeout_is_no_answer() -> None:
    report = run([ev("calling"), ev("ringing", sip_code=180), ev("disconnected", sip_code=487)])
    assert (report.outcome.code, report.outcome.text, report.outcome.sip_code) == (601, "No answer", 487)


def test_answered_without_a_key_times_out_and_hangs_up() -> None:
    report = run([ev("calling"), ev("answered", sip_code=200), ev("playback_done")])
    assert report.outcome.text == "Voice call answered, duration 0 seconds. No response"
    assert [e.kind for e in report.timeline][-4:] == ["hangup", "finished", "disconnected", "outcome"]
    assert report.started_at <= report.ended_at


def test_cancel_set_before_a_slot_is_free_dials_nothing() -> None:
    async def go() -> tuple[CallReport, ScriptedPool]:
        pool, cancel = ScriptedPool([], gate=asyncio.Event()), asyncio.Event()
        task = asyncio.create_task(run_call(pool, JOB, FAST, cancel=cancel))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        cancel.set()
        return await task, pool

    report, pool = asyncio.run(go())
    assert (report.outcome.code, report.outcome.text) == (604, "Cancelled")
    assert pool.placed == [] and [e.kind for e in report.timeline] == ["outcome"]


# ---- issue 12: engine crash (item 8), registration (item 10), caller ID (item 6)


def test_an_engine_crash_before_the_key_is_call_failed_engine() -> None:
    report = run([ev("calling"), ev("answered", sip_code=200),
                  ev("disconnected", reason="engine crashed")])
    assert (report.outcome.code, report.outcome.text, report.outcome.digit) == (603, "Call failed (engine)",
                                                                                None)
    assert report.outcome.answered and not report.outcome.charged


def test_an_engine_crash_after_the_key_keeps_the_key() -> None:
    report = run([ev("calling"), ev("answered", sip_code=200), ev("digit", digit="1", source="rfc4733"),
                  ev("disconnected", reason="engine crashed")])
    assert report.outcome.text.endswith("R = 1") and report.outcome.charged


def test_an_engine_crash_before_the_answer() -> None:
    report = run([ev("calling"), ev("disconnected", reason="engine crashed")])
    assert (report.outcome.code, report.outcome.text) == (603, "Call failed (engine)")


def test_a_refused_registration_is_call_failed_registration() -> None:
    report = run([ev("disconnected", reason="not registered: 403 Forbidden")])
    assert (report.outcome.code, report.outcome.text) == (603, "Call failed (registration)")


@pytest.mark.parametrize("caller_id", ["abc", "+1 250 606", "1250;tag=x", "12@evil", "+"])
def test_a_bad_caller_id_fails_before_anything_is_dialled(caller_id: str) -> None:
    pool = ScriptedPool([ev("calling")])
    with pytest.raises(InvalidCallerId) as raised:
        asyncio.run(run_call(pool, replace(JOB, caller_id=caller_id), FAST))  # type: ignore[arg-type]
    assert (raised.value.code, raised.value.status_text) == (500, "ERROR: INVALID CALLERID")
    assert pool.placed == []
