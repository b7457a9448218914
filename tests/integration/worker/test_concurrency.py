"""100 simultaneous calls through the voice worker, 25 engine processes, one SIPp UAS: every outcome
right, and all 100 were up at the same moment (from the store: every 'answered' before any end)."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from api.runtime.worker import running_worker
from ivr.settings import DialerSettings, SipSettings
from store.models import Message
from tests.integration.calls.conftest import start_sipp
from tests.integration.worker.conftest import Store, worker_settings
from tests.integration.worker.test_limits import event_times
from tests.procfs import free_block

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]
HERE = Path(__file__).resolve().parent
CALLS = 100
ENGINES = 25  # 4 calls per engine process (PJSUA_MAX_CALLS of the wheel)
KEY = {"text": "Adam, web server is down", "language": "us", "gender": "male", "repeat": 0, "response": 1}


def test_hundred_simultaneous_calls(store: Store, sipp_workdir: Path) -> None:
    began = time.monotonic()
    peer = start_sipp(HERE / "uas_answer_digit.xml", sipp_workdir, calls=CALLS, limit=CALLS, timeout_s=180)
    try:
        block = free_block(ENGINES * 17)  # RTP ranges, then the SIP ports: never overlapping
        settings = worker_settings(store.data_dir, peer.port).model_copy(update={
            "sip": SipSettings(port=block + ENGINES * 16, rtp_port=block, rtp_ports_per_process=16,
                               processes=ENGINES, trunk_host=f"127.0.0.1:{peer.port}", ring_timeout_s=20.0),
            "dialer": DialerSettings(max_concurrent=CALLS, calls_per_second=1000.0, response_timeout_s=15.0,
                                     max_call_s=60.0)})
        ids = [store.queue_message("tts", settings=KEY) for _ in range(CALLS)]

        async def scenario() -> list[Message]:
            async with running_worker(settings, store.db, worker_id="w-hundred") as node:
                done = [await store.await_finished(i, timeout=150) for i in ids]
                assert node.pool.in_use == 0
                return done

        done = asyncio.run(scenario())
        wrong = [m.status_text for m in done if not re.fullmatch(
            r"Voice call answered, duration \d+ seconds\. R = 1", m.status_text)]
        assert not wrong, wrong
        assert len({m.sip_call_id for m in done}) == CALLS
        answered = [event_times(store, i, "answered")[0] for i in ids]
        ended = [m.finished_at for m in done if m.finished_at is not None]
        print(f"{CALLS} calls: all answered {(max(answered) - min(answered)).total_seconds():.2f} s apart; "
              f"whole test {time.monotonic() - began:.1f} s")
        assert max(answered) < min(ended)  # all 100 were up at the same moment
        assert peer.proc.wait(30) == 0, peer.errors()
    finally:
        if peer.proc.poll() is None:
            peer.proc.kill()
            peer.proc.wait(5)
