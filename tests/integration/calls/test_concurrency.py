"""100 simultaneous calls through the dialer, 25 engine processes, one SIPp UAS: every outcome right."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ivr.dialer import CallJob, CallReport, Dialer
from ivr.settings import DialerSettings

from .conftest import HERE, pool_settings, start_pool, start_sipp, stop_pool

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]
CALLS = 100
ENGINES = 25  # 4 calls per engine process (PJSUA_MAX_CALLS of the wheel)


def test_hundred_simultaneous_calls(sipp_workdir: Path, prompts: dict[str, Path]) -> None:
    began = time.monotonic()
    peer = start_sipp(HERE / "uas_answer_digit.xml", sipp_workdir, calls=CALLS, limit=CALLS)
    try:
        calls = start_pool(pool_settings(ENGINES, ring_timeout_s=20.0), timeout=60)
        try:
            settings = DialerSettings(max_concurrent=CALLS, calls_per_second=1000.0, response_timeout_s=10.0,
                                      max_call_s=30.0)
            jobs = [CallJob(job_id=f"m{i}", uri=peer.uri, prompt=prompts["main"], response=True)
                    for i in range(CALLS)]

            async def go() -> list[CallReport]:
                dialer = Dialer(calls.pool, settings)
                await dialer.start()
                try:
                    return list(await asyncio.gather(*(dialer.submit(job) for job in jobs)))
                finally:
                    await dialer.shutdown()

            reports = calls.runner.run(go(), 60)
            assert calls.pool.in_use == 0
        finally:
            stop_pool(calls)
        wrong = [r.outcome for r in reports if (r.outcome.code, r.outcome.digit) != (200, "1")]
        assert not wrong, wrong
        assert all(r.outcome.text == f"Voice call answered, duration {r.outcome.duration_s} seconds. R = 1"
                   for r in reports)
        assert len({r.outcome.call_id for r in reports}) == CALLS
        answered = [r.started_at + next(e.at_s for e in r.timeline if e.kind == "answered") for r in reports]
        overlap = sum(1 for r in reports if r.ended_at > max(answered))
        print(f"{CALLS} calls: all answered {max(answered) - min(r.started_at for r in reports):.2f} s "
              f"after the first was placed; {overlap} still up when the last was answered; "
              f"whole test {time.monotonic() - began:.1f} s")
        assert overlap == CALLS  # all 100 were up at the same moment
        assert peer.proc.wait(20) == 0, peer.errors()
    finally:
        if peer.proc.poll() is None:
            peer.proc.kill()
            peer.proc.wait(5)
