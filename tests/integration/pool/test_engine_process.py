"""One real engine process (`python -m ivr.engine`) driven over its pipes: start-up, leanness, exits."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.engine import (
    EngineEvent,
    Fatal,
    Pong,
    Ready,
    decode_event,
    encode_command,
    make_command,
    settings_to_json,
)
from ivr.settings import SipSettings

from .conftest import free_block

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

HEAVY_LIBRARIES = ("numpy", "_ssl", "pydantic_core", "_asyncio")
"""Shared objects an idle engine must not load (numpy comes only with in-band DTMF, asyncio pulls in ssl)."""


@pytest.fixture
def engines() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def spawn(started: list[subprocess.Popen[str]], settings_line: str | None = None,
          port: int | None = None) -> subprocess.Popen[str]:
    port = port or free_block(1)
    cmd = [sys.executable, "-m", "ivr.engine", "--index", "0", "--port", str(port),
           "--rtp-port", str(free_block(16)), "--log-level", "INFO"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    started.append(proc)
    assert proc.stdin is not None
    line = settings_to_json(SipSettings(rtp_ports_per_process=16)) if settings_line is None else settings_line
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc


def next_event(proc: subprocess.Popen[str]) -> EngineEvent:
    assert proc.stdout is not None
    return decode_event(proc.stdout.readline())


def finish(proc: subprocess.Popen[str]) -> tuple[int, list[EngineEvent], str]:
    """Exit status, the remaining events (every stdout line must decode) and stderr."""
    out, err = proc.communicate(timeout=15)
    return proc.returncode, [decode_event(line) for line in out.splitlines()], err


def test_ready_pong_lean_and_shutdown(engines: list[subprocess.Popen[str]]) -> None:
    port = free_block(1)
    # inband_dtmf 'never': with 'auto' the engine preloads numpy for in-band detection right after ready
    lean = settings_to_json(SipSettings(rtp_ports_per_process=16, inband_dtmf="never"))
    proc = spawn(engines, lean, port=port)
    ready = next_event(proc)
    assert ready == Ready(index=0, port=port, rtp_port=ready.rtp_port, capacity=4, pid=proc.pid)  # type: ignore[union-attr]
    assert proc.stdin is not None
    proc.stdin.write(encode_command(make_command("ping", seq=41)))
    proc.stdin.flush()
    assert next_event(proc) == Pong(41)
    maps = Path(f"/proc/{proc.pid}/maps").read_text()
    assert "_pjsua2" in maps
    assert [lib for lib in HEAVY_LIBRARIES if lib in maps] == []
    proc.stdin.write(encode_command(make_command("shutdown")))
    proc.stdin.flush()
    status, events, err = finish(proc)
    assert (status, events) == (0, [])
    assert "stopping (shutdown)" in err


def test_exits_when_its_parent_goes_away(engines: list[subprocess.Popen[str]]) -> None:
    proc = spawn(engines)
    assert isinstance(next_event(proc), Ready)
    status, events, err = finish(proc)  # closes stdin: what the parent's death looks like from here
    assert (status, events) == (0, [])
    assert "stopping (stdin EOF)" in err


def test_exits_cleanly_on_sigterm(engines: list[subprocess.Popen[str]]) -> None:
    proc = spawn(engines)
    assert isinstance(next_event(proc), Ready)
    proc.send_signal(signal.SIGTERM)
    status, _, err = finish(proc)
    assert status == 0
    assert "stopping (SIGTERM)" in err and "SIP user agent on port" in err


def test_bad_settings_are_fatal(engines: list[subprocess.Popen[str]]) -> None:
    proc = spawn(engines, settings_line='{"port": "not a number"}')
    status, events, _ = finish(proc)
    assert status == 1
    assert len(events) == 1 and isinstance(events[0], Fatal)
    assert "'port' has the wrong type" in events[0].reason


def test_a_busy_port_is_fatal(engines: list[subprocess.Popen[str]]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        proc = spawn(engines, port=squatter.getsockname()[1])
        status, events, _ = finish(proc)
    assert status == 1
    assert len(events) == 1 and isinstance(events[0], Fatal), events
    assert "did not start" in events[0].reason and "Address already in use" in events[0].reason
