"""Call-level fixtures: the dialer's run_call over a real engine pool against SIPp scenarios and the
built-in test phone, all on 127.0.0.1, every peer started on free ports and ended by its PID.

The pool lives on an asyncio loop in a background thread for the whole module, so one pool serves
every test of a module (faults included: the next call proves it still works) and its supervision
(pings, restarts) keeps running while a test does blocking work such as starting SIPp.
"""

from __future__ import annotations

import asyncio
import math
import re
import subprocess
import threading
import wave
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from ivr.dialer import CallJob, CallReport, run_call
from ivr.pool import EnginePool, RestartPolicy
from ivr.settings import DialerSettings, SipSettings
from ivr.sip import SipEvent
from tests.integration.pool.conftest import child_pids, free_block, process_gone
from tests.integration.sip.conftest import (  # fixtures re-exported for this directory
    PhoneProcess,
    Sipp,
    phone,
    read_wav,
    sipp,
    sipp_workdir,
)
from tests.procfs import wait_sipp_ready

__all__ = ["PhoneProcess", "Sipp", "child_pids", "phone", "process_gone", "read_wav", "sipp",
           "sipp_workdir"]

pytestmark = pytest.mark.integration
T = TypeVar("T")
RATE = 8000
HERE = Path(__file__).resolve().parent
ANSWERED = re.compile(r"^Voice call answered, duration (\d+) seconds\.( R = (.)| No response)?$")


class LoopThread:
    """An asyncio event loop running in a daemon thread; `run` executes a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="calls-loop", daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return self.submit(coro).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def pool_settings(processes: int, rtp_per_process: int = 16, **overrides: Any) -> SipSettings:
    """SipSettings for `processes` engines on free SIP ports and free RTP ranges."""
    # one block for RTP ranges and SIP ports: two blocks drawn apart may overlap (both free until the
    # engines bind), and an engine's RTP range is now exactly its own (ivr.settings.rtp_range)
    rtp_span = processes * rtp_per_process
    first = free_block(rtp_span + processes)
    base = SipSettings(port=first + rtp_span, rtp_port=first, rtp_ports_per_process=rtp_per_process,
                       processes=processes)
    return replace(base, **overrides)


@dataclass
class Calls:
    """One running engine pool and the loop that drives it."""

    runner: LoopThread
    pool: EnginePool

    def call(self, uri: str, prompt: Path, *, settings: DialerSettings | None = None,
             timeout: float = 60.0, **job: Any) -> CallReport:
        """Run one call attempt through the dialer's run_call and return its report."""
        call_job = CallJob(job_id=job.pop("job_id", "t"), uri=uri, prompt=prompt, **job)
        return self.runner.run(run_call(self.pool, call_job, settings or DIALER), timeout)


DIALER = DialerSettings(response_timeout_s=3.0, max_call_s=30.0, hangup_grace_s=5.0)
"""Dialer settings of the tests: a short response timeout, a bounded call."""


def start_pool(settings: SipSettings, timeout: float = 120.0) -> Calls:
    """Start an engine pool on its own loop thread (engines may be slow to start on a loaded machine)."""
    runner = LoopThread()

    async def make() -> EnginePool:
        pool = EnginePool(settings, policy=RestartPolicy(ready_timeout_s=60.0))
        await pool.start()
        return pool

    try:
        return Calls(runner, runner.run(make(), timeout))
    except BaseException:
        runner.close()
        raise


def stop_pool(calls: Calls) -> None:
    try:
        calls.runner.run(calls.pool.stop(), 60)
    finally:
        calls.runner.close()


@pytest.fixture(scope="module")
def calls() -> Iterator[Calls]:
    """Two engine processes (8 calls) shared by a module; a short ring timeout for 'No answer'."""
    running = start_pool(pool_settings(2, ring_timeout_s=3.0))
    yield running
    stop_pool(running)


def write_wav(path: Path, pcm: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.astype("<i2").tobytes())
    return path


def noise_prompt(seconds: float, seed: int) -> np.ndarray:
    """A prompt whose waveform is unlike any shifted copy of itself (band-limited noise under a
    stepped envelope), so a cross-correlation finds where it starts to the sample."""
    rng = np.random.default_rng(seed)
    n = int(RATE * seconds)
    noise = np.convolve(rng.standard_normal(n + 8), np.hanning(9), mode="valid")[:n]
    env = np.repeat(rng.uniform(0.2, 1.0, size=math.ceil(seconds * 10)), RATE // 10)[:n]
    pcm = noise * env
    return np.round(pcm / np.abs(pcm).max() * 12000).astype(np.int16)


@pytest.fixture(scope="module")
def prompts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Test prompts: 'short' 1 s, 'main' 4 s, 'other' 4 s (a different signal, for negative checks)."""
    out = tmp_path_factory.mktemp("prompts")
    return {
        "short": write_wav(out / "short.wav", noise_prompt(1.0, 1)),
        "main": write_wav(out / "main.wav", noise_prompt(4.0, 2)),
        "other": write_wav(out / "other.wav", noise_prompt(4.0, 3)),
    }


def normalised_xcorr(needle: np.ndarray, haystack: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of `needle` at every lag of `haystack` (values in -1..1)."""
    a = needle.astype(np.float64)
    a = (a - a.mean()) / (np.linalg.norm(a - a.mean()) or 1.0)
    b = haystack.astype(np.float64)
    m = len(a)
    if len(b) < m:
        return np.zeros(0)
    size = 1 << (len(b) + m).bit_length()
    raw = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)[: len(b) - m + 1]
    sums = np.concatenate(([0.0], np.cumsum(b)))
    squares = np.concatenate(([0.0], np.cumsum(b * b)))
    window_sum = sums[m:] - sums[:-m]
    energy = squares[m:] - squares[:-m] - window_sum**2 / m
    return np.asarray(raw / np.sqrt(np.maximum(energy, 1e-9)))


def peaks(score: np.ndarray, threshold: float, min_gap: int) -> list[int]:
    """Lags where `score` exceeds `threshold`, one per cluster (clusters `min_gap` samples apart)."""
    found: list[int] = []
    for lag in np.flatnonzero(score > threshold):
        if found and lag - found[-1] < min_gap:
            if score[lag] > score[found[-1]]:
                found[-1] = int(lag)
            continue
        found.append(int(lag))
    return found


def answered_text(report: CallReport) -> tuple[int, str | None]:
    """(N, the digit or None) of an answered call's text, checked against the flow's exact duration."""
    match = ANSWERED.match(report.outcome.text)
    assert match, report.outcome.text
    assert report.flow is not None
    assert int(match.group(1)) == math.floor(report.flow.duration_s + 1e-6) == report.outcome.duration_s
    return int(match.group(1)), match.group(3)


def kinds(report: CallReport) -> list[str]:
    return [entry.kind for entry in report.timeline]


def normal_call_works(calls: Calls, sipp: Callable[..., Sipp], prompt: Path) -> None:
    """The same pool serves an ordinary call (answer, RFC 4733 digit 1) right after a fault."""
    peer = sipp("uas_rfc4733.xml")
    report = calls.call(peer.uri, prompt, response=True)
    assert report.outcome.code == 200, report
    assert answered_text(report)[1] == "1"
    assert peer.wait(15) == 0, peer.errors()
    assert calls.pool.in_use == 0


class EventLog:
    """Every SIP event the dialer saw (its `on_event` sink), visible to the test thread."""

    def __init__(self) -> None:
        self.events: list[SipEvent] = []
        self._cond = threading.Condition()

    def note(self, event: SipEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def count(self, kind: str) -> int:
        with self._cond:
            return sum(e.kind == kind for e in self.events)

    def wait_for(self, kind: str, count: int = 1, timeout: float = 30.0) -> None:
        """Block the test thread until `count` events of `kind` were seen."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.count(kind) >= count, timeout):
                raise AssertionError(f"fewer than {count} {kind!r} events in {timeout} s")


def start_sipp(scenario: Path, workdir: Path, *, calls: int, limit: int, timeout_s: int = 60,
               rate: int | None = None) -> Sipp:
    """SIPp running a scenario file from anywhere (cwd: `workdir`, which holds pcap/); `limit`
    concurrent calls, `-m calls`. The caller ends it by its PID (Sipp.proc)."""
    port, media = free_block(1), free_block(4)
    log = workdir / f"{scenario.stem}.{port}.log"
    cmd = ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-mp", str(media),
           "-m", str(calls), "-l", str(limit), "-nostdin", "-timeout", f"{timeout_s}s",
           "-trace_err", "-error_file", str(log)]
    if rate is not None:
        cmd += ["-r", str(rate)]
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_sipp_ready(proc, port, log)
    return Sipp(proc, port, log)


def chunk_matches(played: np.ndarray, heard: np.ndarray, chunk: int = RATE // 2,
                  min_rms: float = 300.0) -> list[tuple[float, int]]:
    """For every non-silent `chunk` of `played`: its best normalised cross-correlation anywhere in
    `heard` and the offset (heard lag - position in played) where it is found. Chunks, not the whole
    prompt, because a jitter buffer may drop or repeat a 20 ms frame and shift the rest."""
    found = []
    for start in range(0, len(played) - chunk + 1, chunk):
        seg = played[start: start + chunk]
        if float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))) < min_rms:
            continue
        score = normalised_xcorr(seg, heard)
        lag = int(score.argmax())
        found.append((float(score[lag]), lag - start))
    return found
