"""A worker killed with SIGKILL mid-call leaves its message to be reclaimed after the lease: a second
worker process completes it. Both are `ivrgate worker` processes. A call that was answered is not
dialled again (issue 12, item 8): the rescuer ends it from the timeline the dead worker left."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.pool.conftest import free_block
from tests.integration.worker.conftest import (
    BALANCE,
    PhoneProcess,
    Store,
    WorkerProcesses,
    descendants,
    process_gone,
)
from tests.integration.worker.test_worker import TTS

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]
LEASE_S = 4


@pytest.fixture
def workers(store: Store, worker_processes: WorkerProcesses) -> Callable[[str, int], subprocess.Popen[str]]:
    def start(worker_id: str, trunk_port: int) -> subprocess.Popen[str]:
        env = {**os.environ, "IVRGATE_DATA_DIR": str(store.data_dir),
               "IVRGATE_SIP__TRUNK_HOST": f"127.0.0.1:{trunk_port}", "IVRGATE_SIP__PROCESSES": "1",
               "IVRGATE_SIP__PORT": str(free_block(1)), "IVRGATE_SIP__RTP_PORT": str(free_block(16)),
               "IVRGATE_SIP__RTP_PORTS_PER_PROCESS": "16", "IVRGATE_STORE__LEASE_S": str(LEASE_S),
               "IVRGATE_WORKER__HEARTBEAT_S": "1", "IVRGATE_WORKER__POLL_INTERVAL_S": "0.5",
               "IVRGATE_WORKER__WORKER_ID": worker_id, "IVRGATE_DIALER__RESPONSE_TIMEOUT_S": "8"}
        env.pop("IVRGATE_DATABASE_URL", None)
        return worker_processes.start(env, f"ivrgate: worker {worker_id} ready (1 engine processes, sqlite")

    return start


def test_sigkilled_worker_message_is_completed_by_another(
    store: Store, phone: Callable[..., PhoneProcess], workers: Callable[[str, int], subprocess.Popen[str]]
) -> None:
    far = phone("--press", "1", "--wait", "5", calls=1)  # killed before the key: one call only
    message_id = store.queue_message("tts", settings=TTS)
    doomed = workers("w-doomed", far.port)
    engines = descendants(doomed.pid)
    store.wait_event(message_id, "answered", timeout=60)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)

    held = store.message(message_id)
    assert held.finished_at is None and held.lease_owner == "w-doomed"
    assert (held.status_code, held.status_text) == (110, "Calling")
    deadline = time.monotonic() + 15
    while not all(process_gone(pid) for pid in engines) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(process_gone(pid) for pid in engines), "the dead worker's engine outlived it"

    rescuer = workers("w-rescue", far.port)
    done = store.wait_finished(message_id, timeout=90)
    # answered, then the result was lost with the worker: not a second call, not a wrong answer
    assert (done.status_code, done.status_text) == (603, "Call failed (engine)"), store.events(message_id)
    assert done.attempts == 2 and done.response == ""
    claims = [detail for kind, detail in store.events(message_id) if kind == "claimed"]
    assert [c.split()[0] for c in claims] == ["w-doomed", "w-rescue"]
    assert [kind for kind, _ in store.events(message_id)].count("dialling") == 1
    assert store.balance() == BALANCE  # not charged

    rescuer.send_signal(signal.SIGTERM)
    assert rescuer.wait(30) == 0
    calls = far.results(timeout=60)  # the phone ends the orphaned call itself (no RTP)
    assert len(calls) == 1
