"""End-to-end SMS figure of the shipped server: from the legacy `matrix` HTTP call to the SMSC, per second.

    .venv/bin/python -m tests.bench.bench_sms_gateway [--messages 3000] [--per-call 100] [--clients 4]

`ivrgate serve --no-worker` (an SMS-only gateway: no SIP trunk; its SMS node runs) is started as a
subprocess on its default event loop (uvloop) and a fresh SQLite store, bound to the node SMSC
(tests/peers/smsc.js), which answers every submit_sm and sends a receipt per part. `--clients` threads
post `matrix` calls of `--per-call` recipients over HTTP. The clock starts before the first call and
stops when the SMSC has accepted every message (its own counter); a second figure waits until the store
has every message `Delivered` (the receipts handled). The serve process's CPU time over that span, per
SMS, is printed too: unlike the rates, it hardly depends on what else the machine is running. Bounded:
`--messages` SMS in all (default 3,000), and every wait has a deadline.

The SMSC-side settings are the bench's, not the defaults: `sms.rate_per_s = 0` (unpaced; the default 200/s
is an SMSC's usual contract and would be the figure), `sms.window = 64`, `sms_service.batch = 256`,
`sms_service.max_in_flight = 2048`; serve logs at WARNING (at INFO it logs a line per submission).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from store import accounts, ledger, rating
from store.db import Database, resolve_url
from store.models import Message
from tests.integration.sms.peer import Smsc, free_port

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "bench@example.com", "bench-pass-1"
FUNDS = 10**12
"""Micro-units: enough for any bounded run."""
DEADLINE_S = 300.0


def seed(data: Path) -> None:
    db = Database.open(resolve_url("", data))
    db.upgrade()
    now = dt.datetime.now(dt.UTC)
    with db.transaction() as session:
        owner = accounts.create_account(session, username=USER, password=PASSWORD, now=now)
        ledger.top_up(session, owner.id, FUNDS, now)
        rating.import_rates(session, rating.parse_rates_csv("prefix,sms,voice,tts\n1,0.0075,0.013,0.015\n"))
    db.dispose()


def start_serve(data: Path, smsc: Smsc, port: int, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVRGATE_")}
    env.update(IVRGATE_SMS__HOST="127.0.0.1", IVRGATE_SMS__PORT=str(smsc.port), IVRGATE_SMS__SYSTEM_ID="test",
               IVRGATE_SMS__PASSWORD="test", IVRGATE_SMS__RATE_PER_S="0", IVRGATE_SMS__WINDOW="64",
               IVRGATE_SMS_SERVICE__BATCH="256", IVRGATE_SMS_SERVICE__MAX_IN_FLIGHT="2048",
               IVRGATE_SMS_SERVICE__POLL_INTERVAL_S="0.1", IVRGATE_SMTP__ENABLED="false",
               IVRGATE_SERVER__LOG_LEVEL="WARNING", **extra)
    with log.open("wb") as sink:
        return subprocess.Popen([sys.executable, "-m", "api", "--data", str(data), "serve", "--no-worker",
                                 "--port", str(port)], cwd=ROOT, env=env, stdout=sink,
                                stderr=subprocess.STDOUT)


def wait(condition: Callable[[], bool], what: str, proc: subprocess.Popen[bytes], log: Path,
         poll_s: float = 0.01) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited {proc.returncode}: {log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(poll_s)


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).json()["sms"]["binds"][0]["state"] == "bound"
    except (httpx.TransportError, KeyError, ValueError, IndexError):
        return False


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def delivered(data: Path) -> int:
    db = Database.open(resolve_url("", data))
    try:
        with db.read() as session:
            return int(session.query(Message).filter(Message.status_code == 200).count())
    finally:
        db.dispose()


def bench_end_to_end(messages: int = 3000, per_call: int = 100, clients: int = 4) -> dict[str, float]:
    """Submit `messages` SMS to a `serve` subprocess through `matrix`; the rates it reached."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        seed(data)
        smsc = Smsc(data / "accepted.jsonl", nodelay=True)
        smsc.start()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = data / "serve.log"
        proc = start_serve(data, smsc, port, log)
        try:
            wait(lambda: healthy(url), "serve bound to the SMSC", proc, log, 0.2)
            phones = [f"+1250{n:07d}" for n in range(messages)]
            calls = [",".join(phones[i:i + per_call]) for i in range(0, messages, per_call)]

            def post(batch: str) -> None:
                with httpx.Client(timeout=120) as client:
                    form = {"username": USER, "password": PASSWORD, "txt": "Bench message", "phone": batch}
                    answer = client.post(f"{url}/matrix", data=form)
                    assert answer.status_code == 200 and "STATUSCODE: 200" in answer.text, answer.text[:300]

            start, cpu_start = time.perf_counter(), cpu_s(proc.pid)
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(post, calls))
            submitted = time.perf_counter()
            wait(lambda: smsc.state()["stats"]["accepted"] >= messages, "every SMS at the SMSC", proc, log)
            at_smsc = time.perf_counter()
            wait(lambda: delivered(data) >= messages, "every SMS Delivered", proc, log, 0.1)
            all_delivered, cpu_end = time.perf_counter(), cpu_s(proc.pid)
        finally:
            proc.terminate()
            proc.wait(60)
            smsc.stop()
    return {"messages": messages, "per_call": per_call, "clients": clients,
            "http_submit_per_s": messages / (submitted - start),
            "to_smsc_per_s": messages / (at_smsc - start),
            "to_delivered_per_s": messages / (all_delivered - start),
            "serve_cpu_ms_per_sms": (cpu_end - cpu_start) * 1000 / messages}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--per-call", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args(argv)
    figures = bench_end_to_end(min(args.messages, 20_000), args.per_call, args.clients)
    print(f"ivrgate serve (subprocess, SQLite): matrix -> SMSC, {figures['messages']:.0f} SMS, "
          f"{args.per_call} recipients a call, {args.clients} clients: "
          f"HTTP submit {figures['http_submit_per_s']:.0f}/s, "
          f"accepted at the SMSC {figures['to_smsc_per_s']:.0f} SMS/s, "
          f"Delivered in the store {figures['to_delivered_per_s']:.0f}/s; "
          f"serve's CPU {figures['serve_cpu_ms_per_sms']:.2f} ms an SMS (submitted to Delivered)")


if __name__ == "__main__":
    main()
