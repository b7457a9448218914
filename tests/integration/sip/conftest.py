"""SIPp and SIP user-agent fixtures: every peer runs on 127.0.0.1, is started by the test on a free
port and is ended by its PID."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from ivr.events import SipEvent
from ivr.settings import SipSettings
from ivr.sip import SipUserAgent
from tests.procfs import wait_sipp_ready

ROOT = Path(__file__).resolve().parents[3]
SIPP_DIR = ROOT / "samples" / "sipp"
pytestmark = pytest.mark.integration


def free_udp_port(pair: bool = False) -> int:
    """A UDP port (even, with the next one free too when `pair`) nobody is bound to right now."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not pair:
            return port
        port &= ~1
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 2))
            return port
        except OSError:
            continue
    raise RuntimeError("no free UDP port")


def load_make_pcaps() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_pcaps", SIPP_DIR / "make_pcaps.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Sipp:
    """One SIPp process running a scenario from samples/sipp/."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def uri(self) -> str:
        return f"sip:1000@127.0.0.1:{self.port}"

    def wait(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout)

    def errors(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture(scope="session")
def sipp_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding pcap/ as make_pcaps.py writes it (scenarios name pcaps relative to it)."""
    if shutil.which("sipp") is None:
        pytest.skip("sipp (Debian sip-tester) is not installed")
    work = tmp_path_factory.mktemp("sipp")
    load_make_pcaps().write_all(work / "pcap", SipSettings().telephone_event_pt)
    return work


@pytest.fixture
def sipp(sipp_workdir: Path) -> Iterator[Callable[..., Sipp]]:
    """Start SIPp with a scenario file name (UAS by default); ended by PID after the test."""
    started: list[Sipp] = []

    def start(scenario: str, *args: str, calls: int = 1, timeout_s: int = 30) -> Sipp:
        port, media = free_udp_port(), free_udp_port(pair=True)
        log = sipp_workdir / f"{scenario}.{port}.log"
        cmd = ["sipp", "-sf", str(SIPP_DIR / scenario), "-i", "127.0.0.1", "-p", str(port),
               "-mp", str(media), "-m", str(calls), "-nostdin", "-timeout", str(timeout_s),
               "-trace_err", "-error_file", str(log), *args]
        proc = subprocess.Popen(cmd, cwd=sipp_workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(Sipp(proc, port, log))
        wait_sipp_ready(proc, port, log, tcp="t1" in args)
        return started[-1]

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(5)


class EventLog:
    """The events of one user agent, with waiting helpers (on_event only appends)."""

    def __init__(self) -> None:
        self.events: list[SipEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: SipEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, ref: str, kind: str | None = None) -> list[SipEvent]:
        with self._cond:
            return [e for e in self.events if e.ref == ref and (kind is None or e.kind == kind)]

    def wait(self, ref: str, kind: str, timeout: float = 10.0, count: int = 1) -> list[SipEvent]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.of(ref, kind)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    kinds = [e.kind for e in self.events if e.ref == ref]
                    raise AssertionError(f"no {kind!r} for {ref} within {timeout} s; saw {kinds}")
                self._cond.wait(left)
            return self.of(ref, kind)


@dataclass
class Agent:
    ua: SipUserAgent
    log: EventLog = field(default_factory=EventLog)


@pytest.fixture
def make_ua() -> Iterator[Callable[..., Agent]]:
    """Start SipUserAgents on free ports; each is stopped after the test."""
    agents: list[Agent] = []

    def make(settings: SipSettings | None = None, **kwargs: object) -> Agent:
        log = EventLog()
        ua = SipUserAgent(settings or SipSettings(), log, port=0,
                          rtp_port=free_udp_port(pair=True), **kwargs)  # type: ignore[arg-type]
        ua.start()
        agents.append(Agent(ua, log))
        return agents[-1]

    yield make
    for agent in agents:
        agent.ua.stop()


def write_prompt(path: Path, seconds: float = 3.0) -> np.ndarray:
    """A test prompt whose loudness envelope has a distinctive shape (bursts of a few hundred ms
    with rising, falling and pseudo-random levels), so an envelope correlation identifies it."""
    rate = 8000
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(7)
    steps = rng.uniform(0.05, 1.0, size=math.ceil(seconds * 5))
    env = np.repeat(steps, rate // 5)[: len(t)]
    pcm = (9000 * env * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return pcm


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def envelope(pcm: np.ndarray, rate: int, ms: int = 20) -> np.ndarray:
    n = rate * ms // 1000
    frames = pcm[: len(pcm) // n * n].astype(np.float64).reshape(-1, n)
    return np.sqrt((frames**2).mean(axis=1))


def best_envelope_correlation(played: np.ndarray, heard: np.ndarray, rate_heard: int) -> float:
    """Largest normalised cross-correlation of the two 20 ms RMS envelopes over all lags."""
    a, b = envelope(played, 8000), envelope(heard, rate_heard)
    a = (a - a.mean()) / (a.std() or 1.0)
    best = -1.0
    for lag in range(0, max(1, len(b) - len(a) + 1)):
        seg = b[lag: lag + len(a)]
        if len(seg) < len(a) or seg.std() == 0:
            continue
        seg = (seg - seg.mean()) / seg.std()
        best = max(best, float((a * seg).mean()))
    return best


@dataclass
class PhoneProcess:
    """`ivrgate phone` in a child process (pjsua2 allows one Endpoint per process)."""

    proc: subprocess.Popen[str]
    port: int
    stderr: Path | None = None
    """The phone's log (refusals are logged there), when the test asked for it."""

    @property
    def uri(self) -> str:
        return f"sip:phone@127.0.0.1:{self.port}"

    def results(self, timeout: float = 10.0) -> list[dict[str, object]]:
        """Wait for the phone to exit (after --calls N) and return its JSON lines."""
        out, _ = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, out
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[Callable[..., PhoneProcess]]:
    """Start `ivrgate phone --port 0 --json ...`; ended by PID after the test."""
    started: list[PhoneProcess] = []

    def start(*args: str, calls: int = 1, processes: int = 1, rtp_port: int | None = None) -> PhoneProcess:
        """One phone process unless `processes` says more (then ports from `rtp_port` on, 40 each)."""
        rtp = rtp_port or free_udp_port(pair=True)
        cmd = [sys.executable, "-m", "api", "--data", str(tmp_path / "data"), "phone", "--port", "0",
               "--processes", str(processes), "--rtp-port", str(rtp), "--json", "--calls", str(calls), *args]
        log = tmp_path / f"phone-{len(started)}.log"
        with log.open("w") as err:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # pjlib's start-up lines must not reach stdout (log_level < 4)
        match = re.search(r"^phone listening on [0-9.]+:(\d+)", first)
        assert match, f"phone did not start, or printed something first: {first!r}"
        started.append(PhoneProcess(proc, int(match.group(1)), log))
        return started[-1]

    yield start
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait(5)
