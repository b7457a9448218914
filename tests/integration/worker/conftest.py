"""Worker fixtures: a migrated SQLite store in a temp data directory, an account with credit and rates,
voice messages queued the way api.core.service writes them (status 100, a reservation of the longest call,
the prompt's settings JSON), and settings whose trunk is a real peer on 127.0.0.1 (the built-in test
phone in its own process, or SIPp). Every peer is started on free ports and ended by its PID."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from api.core.settings import Settings, WorkerSettings
from ivr.settings import DialerSettings, SipSettings
from store import accounts, blobs, ledger, queue, rating
from store.clock import utc_now
from store.db import Database, resolve_url
from store.models import Account, Message, MessageEvent
from store.settings import StoreSettings
from tests.integration.pool.conftest import child_pids, free_block, process_gone
from tests.integration.sip.conftest import (  # fixtures re-exported for this directory
    PhoneProcess,
    Sipp,
    phone,
    sipp,
    sipp_workdir,
)

__all__ = ["PhoneProcess", "Sipp", "child_pids", "phone", "process_gone", "sipp", "sipp_workdir"]

pytestmark = pytest.mark.integration
RATES_CSV = "prefix,sms,voice,tts,currency,description\n1,0.0075,0.0130,0.0150,USD,North America\n"
TTS_PER_MINUTE = 15_000
"""Micro-units a minute for TTS calls to +1 in RATES_CSV."""
BALANCE = 10_000_000
PHONE = "+12506063167"
HASHER = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


@dataclass
class Store:
    """A migrated store with one owner account (BALANCE micro-units) and the rates of RATES_CSV."""

    db: Database
    owner_id: int
    data_dir: Path

    def queue_message(self, kind: str = "tts", *, settings: dict[str, Any] | None = None,
                      phone: str = PHONE, max_call_s: float = 30.0, prompt_blob: str | None = None) -> str:
        """Queue one voice message as the service does; returns its ID."""
        body = (settings or {}).get("text", "") if kind == "tts" else ""
        with self.db.transaction() as s:
            owner = s.get_one(Account, self.owner_id)
            price, currency = rating.price_for(s, phone, kind)
            spec = queue.NewMessage(kind=kind, phone=phone, job_id=queue.new_message_id(), body=body,
                                    settings=settings or {}, prompt_blob=prompt_blob, rate=price,
                                    currency=currency, reserved=rating.call_cost(max_call_s, price, 60))
            message = queue.create_message(s, owner, spec, utc_now())
            ledger.reserve_for(s, owner, [message], utc_now())
            return message.id

    def put_blob(self, data: bytes) -> str:
        with self.db.transaction() as s:
            return blobs.put_blob(s, data, utc_now(), "audio/wav", "upload:test.wav")

    def message(self, message_id: str) -> Message:
        with self.db.read() as s:
            message = s.get_one(Message, message_id)
            s.expunge(message)  # kept readable after the read transaction ends
            return message

    def events(self, message_id: str) -> list[tuple[str, str]]:
        with self.db.read() as s:
            rows = s.query(MessageEvent).filter_by(message_id=message_id).order_by(MessageEvent.id)
            return [(e.kind, e.detail) for e in rows]

    def balance(self) -> int:
        with self.db.read() as s:
            return ledger.balance(s, self.owner_id)

    def wait_finished(self, message_id: str, timeout: float = 60.0) -> Message:
        """Block until the message has a final status (polling the store)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.message(message_id)
            if message.finished_at is not None:
                return message
            time.sleep(0.1)
        raise AssertionError(f"message {message_id} not finished in {timeout} s: {self.events(message_id)}")

    async def await_finished(self, message_id: str, timeout: float = 60.0) -> Message:
        return await asyncio.to_thread(self.wait_finished, message_id, timeout)

    def wait_event(self, message_id: str, kind: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(k == kind for k, _ in self.events(message_id)):
                return
            time.sleep(0.05)
        raise AssertionError(f"no {kind!r} event for {message_id} in {timeout} s: {self.events(message_id)}")


def make_store(data_dir: Path, username: str = "worker@example.com", password: str = "pw", *,
               url: str = "") -> Store:
    """A migrated store holding one account (`username`, `password`) with BALANCE and RATES_CSV: SQLite in
    `data_dir`, or the database at `url`."""
    db = Database.open(resolve_url(url, data_dir))
    db.upgrade()
    with db.transaction() as s:
        owner = accounts.create_account(s, username=username, password=password, now=utc_now(),
                                        hasher=HASHER)
        ledger.top_up(s, owner.id, BALANCE, utc_now())
        rating.import_rates(s, rating.parse_rates_csv(RATES_CSV))
        s.flush()
        owner_id = owner.id
    return Store(db, owner_id, data_dir)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = make_store(tmp_path / "data")
    yield made
    made.db.dispose()


def worker_settings(data_dir: Path, trunk_port: int, **sections: Any) -> Settings:
    """Settings of a one-engine worker calling 127.0.0.1:trunk_port, with short timers for tests."""
    block = free_block(17)  # RTP 16 ports, then the SIP port: one block, so they never overlap
    sip = SipSettings(port=block + 16, rtp_port=block, rtp_ports_per_process=16, processes=1,
                      trunk_host=f"127.0.0.1:{trunk_port}", ring_timeout_s=10.0)
    defaults: dict[str, Any] = {
        "sip": sip,
        "dialer": DialerSettings(response_timeout_s=4.0, max_call_s=30.0, hangup_grace_s=5.0,
                                 retry_delay_s=0.5),
        "store": StoreSettings(lease_s=6.0),
        "worker": WorkerSettings(poll_interval_s=0.5, heartbeat_s=1.0, shutdown_timeout_s=20.0),
    }
    defaults.update(sections)
    return Settings(data_dir=data_dir, **defaults)


WORKER_ROOT = Path(__file__).resolve().parents[3]


def descendants(pid: int) -> set[int]:
    """PIDs of the living children of `pid` (its engine processes), from /proc."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(p) for p in (task / "children").read_text().split())
        except FileNotFoundError:
            continue
    return found


class WorkerProcesses:
    """`ivrgate worker` subprocesses (the real command) a test starts, each waited for until its READY
    line, and all ended with their engine processes when the test is over."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[str]] = []
        self.engines: set[int] = set()

    def start(self, env: dict[str, str], ready: str) -> subprocess.Popen[str]:
        """Start one with `env`; its first line must start with `ready`."""
        proc = subprocess.Popen([sys.executable, "-m", "api", "worker"], cwd=WORKER_ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.started.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(ready), line
        self.engines.update(descendants(proc.pid))
        return proc

    def close(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for pid in self.engines:  # orphaned engines exit on stdin EOF; make sure of it
            if not process_gone(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def worker_processes() -> Iterator[WorkerProcesses]:
    processes = WorkerProcesses()
    try:
        yield processes
    finally:
        processes.close()
