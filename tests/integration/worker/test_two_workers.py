"""Two `ivrgate worker` processes on one PostgreSQL respect one account's limit together (issue 14):
the account may hold 2 calls at once, each node alone could hold 4 (one engine process), 8 voice
messages are due, and a SIPp UAS holds every call 3 s. SIPp counts the calls it has at once (a global
counter in tests/integration/worker/uas_hold_count.xml): never more than 2, and every message ends
answered.

Worker A starts alone and takes the account's 2 calls; worker B starts while they are up and finds
the account full; A is told to stop (SIGTERM: it claims nothing more and finishes its calls), so B dials
the rest, and only as A's calls end: B's first claim waits on the calls A holds, read from the store.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from store.models import Message, MessageEvent
from tests.integration.store.conftest import pg_cluster
from tests.integration.store.postgres import Cluster
from tests.integration.worker.conftest import Sipp, Store, WorkerProcesses, make_store
from tests.integration.worker.test_worker import TTS
from tests.procfs import free_block

__all__ = ["pg_cluster"]

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]
ROOT = Path(__file__).resolve().parents[3]
SCENARIO = Path(__file__).with_name("uas_hold_count.xml")
MESSAGES = 8
LIMIT = 2


@pytest.fixture
def pg_store(pg_cluster: Cluster, tmp_path: Path) -> Iterator[tuple[Store, str]]:
    """A migrated PostgreSQL store with the worker tests' account, and its URL."""
    name = "ivrgate_two_workers"
    pg_cluster.drop_database(name)
    url = pg_cluster.create_database(name)
    store = make_store(tmp_path / "data", url=url)
    yield store, url
    store.db.dispose()
    pg_cluster.drop_database(name)


def node_env(data_dir: Path, url: str, trunk_port: int, worker_id: str) -> dict[str, str]:
    """`ivrgate worker` with its defaults, but for the store, the trunk and free ports (one engine
    process: its 4 calls are more than the account's limit)."""
    env = {**os.environ, "IVRGATE_DATA_DIR": str(data_dir), "IVRGATE_DATABASE_URL": url,
           "IVRGATE_SIP__TRUNK_HOST": f"127.0.0.1:{trunk_port}", "IVRGATE_SIP__PROCESSES": "1",
           "IVRGATE_SIP__PORT": str(free_block(1)), "IVRGATE_SIP__RTP_PORT": str(free_block(16)),
           "IVRGATE_SIP__RTP_PORTS_PER_PROCESS": "16", "IVRGATE_WORKER__WORKER_ID": worker_id}
    return env


@pytest.fixture
def nodes(worker_processes: WorkerProcesses) -> Callable[[dict[str, str]], subprocess.Popen[str]]:
    def start(env: dict[str, str]) -> subprocess.Popen[str]:
        worker_id = env["IVRGATE_WORKER__WORKER_ID"]
        ready = f"ivrgate: worker {worker_id} ready (1 engine processes, postgresql"
        return worker_processes.start(env, ready)

    return start


def claims(store: Store, message_id: str) -> list[str]:
    """The worker IDs that claimed a message, in order."""
    return [detail.split()[0] for kind, detail in store.events(message_id) if kind == "claimed"]


def wait_until(what: Callable[[], bool], timeout: float, why: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"{why}: not in {timeout} s")
        time.sleep(0.1)


def most_at_once(store: Store, ids: list[str]) -> int:
    """The most messages between their 'dialling' and their end at one moment, from the store."""
    edges: list[tuple[object, int]] = []
    with store.db.read() as session:
        for message_id in ids:
            dialled = session.scalars(select(MessageEvent.at).where(
                MessageEvent.message_id == message_id, MessageEvent.kind == "dialling")).one()
            ended = session.get_one(Message, message_id).finished_at
            edges += [(dialled, 1), (ended, -1)]
    level = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):  # an end sorts before a start
        level += step
        peak = max(peak, level)
    return peak


def peaks(log: Path) -> list[int]:
    """The calls SIPp had at once after each INVITE and each ended call, in order (SIPp writes the
    counter as a double, and 0 as nothing)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return [round(float(n or 0)) for n in re.findall(r"inflight (-?[0-9.]*) (?:up|down)", text)]


def test_two_workers_on_one_postgresql_hold_the_account_to_two_calls(
    pg_store: tuple[Store, str], sipp: Callable[..., Sipp], sipp_workdir: Path,
    nodes: Callable[[dict[str, str]], subprocess.Popen[str]], tmp_path: Path,
) -> None:
    store, url = pg_store
    limits = subprocess.run(
        [sys.executable, "-m", "api", "user", "limits", "worker@example.com", "--max-calls", str(LIMIT)],
        cwd=ROOT, env={**os.environ, "IVRGATE_DATA_DIR": str(store.data_dir), "IVRGATE_DATABASE_URL": url},
        capture_output=True, text=True, timeout=60, check=False)
    assert limits.returncode == 0, limits.stderr
    assert limits.stdout.strip() == "worker@example.com max calls 2, calls per second default"

    log = tmp_path / "inflight.log"
    peer = sipp(str(SCENARIO), "-trace_logs", "-log_file", str(log), calls=MESSAGES, timeout_s=180)
    ids = [store.queue_message("tts", settings=TTS) for _ in range(MESSAGES)]

    first = nodes(node_env(store.data_dir, url, peer.port, "node-a"))
    wait_until(lambda: sum(1 for n in peaks(log) if n > 0) >= LIMIT, 90, "node A's first two calls")
    second = nodes(node_env(store.data_dir, url, peer.port, "node-b"))
    first.send_signal(signal.SIGTERM)  # claims nothing more, finishes the calls it has
    assert first.wait(60) == 0
    done: list[Message] = [store.wait_finished(message_id, timeout=120) for message_id in ids]
    assert peer.wait(30) == 0, peer.errors()  # SIPp saw its 8 calls, each as the scenario says
    second.send_signal(signal.SIGTERM)
    assert second.wait(60) == 0

    counted = peaks(log)
    print(f"calls at once, as SIPp counted them: {counted}")
    assert len(counted) == 2 * MESSAGES and counted[-1] == 0
    assert max(counted) == LIMIT  # never more than 2 together, over both nodes
    outcomes = [(m.status_code, m.attempts) for m in done]
    assert outcomes == [(200, 1)] * MESSAGES, [(m.status_text, m.attempts) for m in done]
    assert all(re.fullmatch(r"Voice call answered, duration \d+ seconds\. No response", m.status_text)
               for m in done)
    assert most_at_once(store, ids) == LIMIT  # the store's view: dialled to finished
    by = [claims(store, message_id)[0] for message_id in ids]
    assert by.count("node-a") >= LIMIT and by.count("node-b") >= 1, by
    assert set(by) == {"node-a", "node-b"}
