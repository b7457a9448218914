"""The test SMSC (tests/peers/smsc.js on the npm package smpp 0.5.1) as a Python object.

`Smsc.start()` installs the node packages when tests/peers/node_modules is missing (`npm ci`), starts
the script on free 127.0.0.1 ports and waits for it; `kill()` ends it by PID (SIGKILL) and `start()`
brings it back on the same ports, appending to the same record file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

PEERS = Path(__file__).resolve().parents[2] / "peers"
SCRIPT = PEERS / "smsc.js"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ensure_node_packages() -> None:
    """Install the pinned smpp package into tests/peers/node_modules when it is not there."""
    if (PEERS / "node_modules" / "smpp" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("the SMSC peer needs node and npm (Debian packages nodejs and npm)")
    command = [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(PEERS)]
    if not (PEERS / "package-lock.json").exists():
        command[1] = "install"
    subprocess.run(command, check=True, cwd=PEERS, capture_output=True, timeout=300)


class Smsc:
    """One node SMSC process; its counters, records and switches over the control port."""

    def __init__(self, record: Path, *, nodelay: bool = False, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.control_port = free_port()
        self.record = record
        self.nodelay = nodelay
        self.extra_env = env or {}
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        ensure_node_packages()
        env = {**os.environ, "PORT": str(self.port), "CONTROL_PORT": str(self.control_port),
               "RECORD": str(self.record), "QUIET": "1", "NODELAY": "1" if self.nodelay else "0",
               **self.extra_env}
        self.process = subprocess.Popen(["node", str(SCRIPT)], cwd=PEERS, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("ready"):
            self.process.kill()
            self.process.wait()
            raise RuntimeError(f"the SMSC did not start: {line!r}")

    def kill(self) -> None:
        """SIGKILL by PID: no goodbye to the ESME, nothing flushed but the record file."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def _end(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)
            self.process.wait(timeout=10)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.control_port}{path}", data=data,
                                         method=method, headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def state(self) -> dict[str, Any]:
        """Counters, accepted submits (with raw short_message hex and node's own decoding), held
        submits and the answers to deliver_sm."""
        state: dict[str, Any] = self._call("GET", "/state")
        return state

    def configure(self, **switches: Any) -> None:
        self._call("POST", "/config", switches)

    def send_mo(self, source: str, destination: str, text: str, *, coding: str = "gsm", parts: int = 1,
                concat: str = "udh", ref: int = 42, source_ton: int | None = None,
                dest_ton: int | None = None, only: list[int] | None = None) -> None:
        """Send an MO message (TON 1 for a '+' address, else 0, unless given; only the parts numbered in
        `only` when given); raises when no receiving session is bound (the SMSC would drop it)."""
        request: dict[str, Any] = {"source": source, "destination": destination, "text": text,
                                   "coding": coding, "parts": parts, "concat": concat, "ref": ref}
        extra = {"source_ton": source_ton, "dest_ton": dest_ton, "only": only}
        request.update({name: value for name, value in extra.items() if value is not None})
        answer = self._call("POST", "/mo", request)
        if not answer.get("sent"):
            raise RuntimeError(f"the SMSC sent no MO message: {answer.get('error', answer)}")

    def wait_receiver(self, timeout_s: float = 20.0) -> None:
        """Wait until a session bound as receiver or transceiver (an ESME binds after its start
        returns; an MO message sent before then has nowhere to go)."""
        deadline = time.monotonic() + timeout_s
        while not any(mode != "transmitter" for mode in self.state()["bound"]):
            if time.monotonic() > deadline:
                raise AssertionError("no receiving session bound to the SMSC")
            time.sleep(0.05)

    def recorded(self) -> list[dict[str, Any]]:
        """Every accepted submit in the record file, across restarts."""
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line.strip()]
