"""End-to-end fixtures: `ivrgate serve` as a real subprocess on a temp data directory, set up with the
CLI (`ivrgate user add`, `ivrgate rates import`), its trunk a real peer on 127.0.0.1 (the built-in
test phone in its own process, or SIPp). Every process is started on free ports and ended by its PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from store import accounts, ledger
from store.db import Database, resolve_url
from store.models import MICROS
from tests.integration.pool.conftest import free_block
from tests.integration.sip.conftest import (  # fixtures re-exported for this directory
    PhoneProcess,
    Sipp,
    phone,
    sipp,
    sipp_workdir,
)

__all__ = ["PhoneProcess", "Sipp", "phone", "sipp", "sipp_workdir"]

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]
USERNAME, PASSWORD, CREDIT = "user@hotmail.com", "pass72727", "10.00"


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ivrgate(data_dir: Path, *args: str) -> str:
    """Run `python -m api --data DIR ARGS...` to completion; its stdout."""
    done = subprocess.run([sys.executable, "-m", "api", "--data", str(data_dir), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=clean_env())
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVRGATE_")}
    # serve's SMTP gateway on any free port: a fixed 2525 would collide with another serve on this machine
    return {**env, "IVRGATE_SMTP__PORT": "0", **extra}


def fields(answer: str) -> dict[str, str]:
    """The `KEY: value` lines of a legacy text answer (one recipient)."""
    pairs = (line.split(": ", 1) for line in answer.splitlines() if ": " in line)
    return {key: value for key, value in pairs}


@dataclass
class Server:
    """One `ivrgate serve` process."""

    proc: subprocess.Popen[str]
    url: str
    data_dir: Path
    log: Path

    def shown_balance(self) -> Decimal:
        """BALANCE as the legacy `balance` route shows it (4 decimals, rounded down)."""
        answer = httpx.post(f"{self.url}/balance", data={"username": USERNAME, "password": PASSWORD}).text
        return Decimal(fields(answer)["BALANCE"])

    def balance(self) -> Decimal:
        """The exact balance from the store's ledger (micro-units), in currency units."""
        database = Database.open(resolve_url("", self.data_dir))
        try:
            with database.read() as session:
                account = accounts.find_account(session, USERNAME)
                assert account is not None
                return Decimal(ledger.balance(session, account.id)) / MICROS
        finally:
            database.dispose()

    def status(self, message_id: str) -> dict[str, str]:
        form = {"username": USERNAME, "password": PASSWORD, "id": message_id}
        return fields(httpx.post(f"{self.url}/matrix_status", data=form).text)

    def wait_final(self, message_id: str, timeout: float = 90.0) -> dict[str, str]:
        """Poll matrix_status until the message is neither queued nor calling."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(message_id)
            if status.get("STATUSCODE") not in ("100", "110"):
                return status
            time.sleep(0.25)
        raise AssertionError(f"{message_id} still {self.status(message_id)} after {timeout} s")

    def stop(self) -> int:
        """SIGTERM and wait: the exit status of a graceful shutdown."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Prepare a data directory with the CLI and start `ivrgate serve` dialling 127.0.0.1:<port>;
    keyword arguments are more IVRGATE_... environment variables."""
    started: list[Server] = []

    def start(trunk_port: int, **more_env: str) -> Server:
        data = tmp_path / f"data{len(started)}"
        ivrgate(data, "user", "add", USERNAME, "--password", PASSWORD, "--credit", CREDIT)
        ivrgate(data, "rates", "import", str(ROOT / "samples" / "rates.csv"))
        port = free_tcp_port()
        block = free_block(17)  # RTP 16 ports, then the SIP port: one block, so they never overlap
        env = clean_env(IVRGATE_SIP__TRUNK_HOST=f"127.0.0.1:{trunk_port}", IVRGATE_SIP__PROCESSES="1",
                        IVRGATE_SIP__PORT=str(block + 16), IVRGATE_SIP__RTP_PORT=str(block),
                        IVRGATE_SIP__RTP_PORTS_PER_PROCESS="16", IVRGATE_SERVER__LOG_FORMAT="json",
                        IVRGATE_DIALER__RESPONSE_TIMEOUT_S="8", IVRGATE_DIALER__MAX_CALL_S="60",
                        **more_env)
        server = launch_serve(data, tmp_path / f"serve{len(started)}.log", env, port=port)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(10)


def launch_serve(data_dir: Path, log: Path, env: dict[str, str], *args: str, port: int = 0) -> Server:
    """`ivrgate --data DATA_DIR serve --port PORT ARGS...` (a free port when 0) with `env` (a whole
    environment: clean_env), its output in `log`; returns once /healthz answers, and ends the process
    when it does not."""
    port = port or free_tcp_port()
    with log.open("w") as sink:
        argv = [sys.executable, "-m", "api", "--data", str(data_dir), "serve", "--port", str(port), *args]
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True)
    server = Server(proc, f"http://127.0.0.1:{port}", data_dir, log)
    try:
        wait_healthy(server)
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    return server


def launch_worker(env: dict[str, str], log: Path, processes: list[subprocess.Popen[str]],
                  ready: str) -> subprocess.Popen[str]:
    """`ivrgate worker` (the real command) with `env`, its log in `log`, added to `processes` (ended by the
    fixture); returns once its first line, which must start with `ready`, is printed."""
    with log.open("w") as sink:
        worker = subprocess.Popen([sys.executable, "-m", "api", "worker"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=sink, text=True)
    processes.append(worker)
    assert worker.stdout is not None
    line = worker.stdout.readline()
    assert line.startswith(ready), (line, log.read_text())
    return worker


def wait_healthy(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"serve exited {server.proc.returncode}: {server.log.read_text()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"serve not healthy in {timeout} s: {server.log.read_text()}")
