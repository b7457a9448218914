"""Helpers shared by the tests and benches that run real processes on 127.0.0.1: free UDP ports,
/proc readers (CPU ticks, memory) and a test tone WAV."""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import time
from pathlib import Path

import numpy as np

from audio.wav import write_wav

TICKS = os.sysconf("SC_CLK_TCK")


def ports_free(ports: list[int]) -> bool:
    """True when every UDP port in `ports` can be bound on 127.0.0.1 right now."""
    socks: list[socket.socket] = []
    try:
        for port in ports:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def tcp_listening(port: int) -> int:
    """How many TCP sockets listen on `port` (from /proc/net/tcp and tcp6)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            count += fields[1].rsplit(":", 1)[1] == f"{port:04X}" and fields[3] == "0A"
    return count


def wait_sipp_ready(proc: subprocess.Popen[bytes], port: int, log: Path | None = None, *, tcp: bool = False,
                    timeout_s: float = 10.0) -> None:
    """Until the SIPp `proc` has bound its SIP UDP `port` (listens on it, with `tcp`: `-t t1`, where a
    call placed before then is refused). A SIPp that ends at start-up is killed and reported with its
    error file `log`; one that ended well (a short UAC scenario) is simply done."""
    deadline = time.monotonic() + timeout_s
    while not (tcp_listening(port) if tcp else not ports_free([port])):
        if proc.poll() == 0:
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait(5)
            errors = log.read_text() if log is not None and log.exists() else ""
            raise RuntimeError(f"SIPp did not start: {errors}")
        time.sleep(0.02)


def free_block(count: int, low: int = 41000, high: int = 59000, tries: int = 200) -> int:
    """A base port such that base .. base + count - 1 are all free UDP ports (other suites run at once)."""
    rng = random.Random()
    for _ in range(tries):
        base = rng.randrange(low, high - count) & ~1
        if ports_free(list(range(base, base + count))):
            return base
    raise RuntimeError(f"no block of {count} free UDP ports")


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of a process in clock ticks; None when it is gone (an engine that crashed)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    return int(fields[11]) + int(fields[12])


def children(pid: int) -> set[int]:
    """The child processes of `pid` (from /proc; empty when it is gone)."""
    found: set[int] = set()
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.update(int(child) for child in (task / "children").read_text().split())
    except FileNotFoundError:
        pass
    return found


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and all its descendants alive now (a server's other processes,
    a database's backends)."""
    own = cpu_ticks(pid) or 0
    return own / TICKS + sum(tree_cpu_seconds(child) for child in children(pid))


def sample(pids: list[int]) -> tuple[dict[int, int], float]:
    """CPU ticks of the living `pids` and the time they were read, for `cpu_pct`."""
    ticks = {pid: cpu_ticks(pid) for pid in pids}
    return {pid: t for pid, t in ticks.items() if t is not None}, time.perf_counter()


def cpu_pct(before: tuple[dict[int, int], float], after: tuple[dict[int, int], float]) -> float:
    """% of one core used between two samples by the processes alive at both."""
    used = sum(after[0][pid] - ticks for pid, ticks in before[0].items() if pid in after[0])
    return used / TICKS / (after[1] - before[1]) * 100


def _kib(pid: int, name: str, field: str) -> int:
    """The kB figure of `field` in /proc/<pid>/<name>; 0 when the process is gone."""
    try:
        match = re.search(rf"(?m)^{field}:\s+(\d+)", Path(f"/proc/{pid}/{name}").read_text())
    except FileNotFoundError:
        return 0
    return int(match.group(1)) if match else 0


def pss_kib(pid: int) -> int:
    return _kib(pid, "smaps_rollup", "Pss")


def memory_kib(pid: int) -> dict[str, int]:
    """RSS, PSS and private anonymous memory of a process, KiB."""
    return {"rss": _kib(pid, "status", "VmRSS"), "pss": pss_kib(pid),
            "anon": _kib(pid, "smaps_rollup", "Anonymous")}


def write_tone(path: Path, seconds: float, amplitude: int = 8000, rate: int = 8000) -> Path:
    """A 440 Hz tone as a 16-bit mono WAV."""
    t = np.arange(int(rate * seconds)) / rate
    write_wav(path, (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.int16), rate)
    return path


def peak_kib(pid: int) -> int:
    """The peak resident memory (VmHWM) of a running process, KiB; 0 when it is gone."""
    return _kib(pid, "status", "VmHWM")
