"""`ivrgate serve` start-up: a listener that cannot be bound is one line naming its setting, a non-zero
exit status and nothing left running; the "serving" line comes only once every listener is bound."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.e2e.conftest import ROOT, clean_env, free_tcp_port, ivrgate
from tests.integration.pool.conftest import free_block
from tests.procfs import children

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    ivrgate(path, "db", "upgrade")
    return path


def serve_env(sip_port: int, smtp_port: int = 0, **more: str) -> dict[str, str]:
    return clean_env(IVRGATE_SIP__TRUNK_HOST="127.0.0.1:5999", IVRGATE_SIP__PROCESSES="2",
                     IVRGATE_SIP__PORT=str(sip_port), IVRGATE_SIP__RTP_PORT=str(free_block(32)),
                     IVRGATE_SIP__RTP_PORTS_PER_PROCESS="16", IVRGATE_SMTP__PORT=str(smtp_port), **more)


def serve_argv(data: Path, http_port: int) -> list[str]:
    return [sys.executable, "-m", "api", "--data", str(data), "serve", "--port", str(http_port)]


def run_serve(data: Path, http_port: int, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(serve_argv(data, http_port), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def held_tcp() -> Iterator[int]:
    """A TCP port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def assert_one_line_failure(done: subprocess.CompletedProcess[str], setting: str) -> None:
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert "serving" not in done.stdout, done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("ivrgate: ")]
    assert len(errors) == 1, done.stderr
    assert f"{setting}: " in errors[0] and "in use" in errors[0].lower(), errors[0]


def test_http_port_taken_is_one_line(data: Path, held_tcp: int) -> None:
    done = run_serve(data, held_tcp, serve_env(free_block(2)))
    assert_one_line_failure(done, "server.port")


def test_smtp_port_taken_is_one_line(data: Path, held_tcp: int) -> None:
    done = run_serve(data, free_tcp_port(), serve_env(free_block(2), smtp_port=held_tcp))
    assert_one_line_failure(done, "smtp.port")


def test_sip_port_taken_is_one_line(data: Path) -> None:
    first = free_block(2)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", first + 1))  # the second engine's port
        done = run_serve(data, free_tcp_port(), serve_env(first))
    assert_one_line_failure(done, "sip.port")
    assert str(first + 1) in done.stderr


def test_serving_is_printed_once_every_listener_is_bound(data: Path) -> None:
    sip_port, smtp_port, http_port = free_block(2), free_tcp_port(), free_tcp_port()
    proc = subprocess.Popen(serve_argv(data, http_port), cwd=ROOT, env=serve_env(sip_port, smtp_port),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until serve prints (or exits)
        assert line.startswith("ivrgate: serving http://127.0.0.1:"), line
        # at this moment every listener must already be bound: binding any of them again fails
        for kind, port in (("tcp", http_port), ("tcp", smtp_port), ("udp", sip_port), ("udp", sip_port + 1)):
            family_type = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
            with socket.socket(socket.AF_INET, family_type) as probe, pytest.raises(OSError):
                probe.bind(("127.0.0.1", port))
        assert len(children(proc.pid)) >= 2  # the two engine processes
    finally:
        proc.terminate()
        assert proc.wait(60) == 0


def test_worker_sip_port_taken_is_one_line(data: Path) -> None:
    first = free_block(2)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", first))
        done = subprocess.run([sys.executable, "-m", "api", "--data", str(data), "worker"], cwd=ROOT,
                              env=serve_env(first), capture_output=True, text=True, timeout=120)
    assert_one_line_failure(done, "sip.port")
    assert "ready" not in done.stdout
