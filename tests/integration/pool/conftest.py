"""Real engine processes against a real SIPp UAS, all on 127.0.0.1, each started by the test on free
ports and ended by its PID."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ivr.events import SipEvent
from ivr.pool import CallHandle
from ivr.settings import SipSettings
from tests.procfs import free_block, wait_sipp_ready

SCENARIO = Path(__file__).with_name("uas_answer.xml")
HOLD_ATTRIBUTE = 'timeout="2000"'


def sip_settings(processes: int = 2) -> SipSettings:
    """Settings for a pool of `processes` engines on free SIP ports and free RTP ranges."""
    rtp_per_process = 16
    rtp_span = processes * rtp_per_process
    first = free_block(rtp_span + processes)  # one block: SIP ports never inside an RTP range
    return SipSettings(port=first + rtp_span, rtp_port=first, rtp_ports_per_process=rtp_per_process,
                       processes=processes)


def child_pids() -> set[int]:
    """PIDs of this process's living children (from /proc)."""
    pids: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            text = (task / "children").read_text()
        except FileNotFoundError:  # that thread ended meanwhile
            continue
        pids.update(int(p) for p in text.split())
    return pids


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@dataclass
class Uas:
    """A SIPp UAS that answers every call and sends BYE after `hold_ms` (earlier BYEs are answered)."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def uri(self) -> str:
        return f"sip:1000@127.0.0.1:{self.port}"


@pytest.fixture
def uas(tmp_path: Path) -> Iterator[Callable[[int], Uas]]:
    """Start a SIPp UAS with a hold time (ms); ended by its PID after the test."""
    if shutil.which("sipp") is None:
        pytest.skip("sipp (Debian sip-tester) is not installed")
    started: list[Uas] = []

    def start(hold_ms: int) -> Uas:
        scenario = tmp_path / f"uas_answer_{hold_ms}.xml"
        text = SCENARIO.read_text()
        assert HOLD_ATTRIBUTE in text
        scenario.write_text(text.replace(HOLD_ATTRIBUTE, f'timeout="{hold_ms}"'))
        port, media = free_block(1), free_block(4)
        cmd = ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-mp", str(media),
               "-nostdin", "-timeout", "120s"]
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(Uas(proc, port))
        wait_sipp_ready(proc, port)
        return started[-1]

    yield start
    for u in started:
        if u.proc.poll() is None:
            u.proc.terminate()
            try:
                u.proc.wait(5)
            except subprocess.TimeoutExpired:
                u.proc.kill()
                u.proc.wait(5)


@dataclass(eq=False)
class Tracker:
    """Consumes one call's events in the background and remembers them."""

    handle: CallHandle
    events: list[SipEvent] = field(default_factory=list)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for event in self.handle.events():
            self.events.append(event)
            if event.kind == "answered":
                self.answered.set()

    async def finished(self) -> SipEvent:
        """Wait for the call's end; its 'disconnected' event."""
        assert self.task is not None
        await self.task
        assert self.events and self.events[-1].kind == "disconnected", self.kinds
        return self.events[-1]

    @property
    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]
