"""`ivrgate serve --http-processes 2`: two processes answer on one port, both write to the one SQLite file
(taking turns through its writer lock), every submission is stored once, and SIGTERM to the first
process ends both with status 0."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from store.db import Database, resolve_url
from store.models import MICROS, Message
from tests.integration.e2e.conftest import (
    PASSWORD,
    ROOT,
    USERNAME,
    Server,
    clean_env,
    fields,
    ivrgate,
    launch_serve,
)
from tests.procfs import children

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SUBMISSIONS = 120
TTS = {"username": USERNAME, "password": PASSWORD, "phone": "12506063167", "txt": "Adam, web server is down"}


def wait_started(log: Path, processes: int, timeout: float = 60.0) -> None:
    """Until `processes` distinct processes logged uvicorn's start-up as complete."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(started_pids(log)) >= processes:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {processes} HTTP processes started: {log.read_text()[-2000:]}")


def reserved(data: Path) -> Decimal:
    """The queued messages in the store (all of them must be) and what they hold, in currency units."""
    database = Database.open(resolve_url("", data))
    try:
        with database.read() as session:
            rows = session.execute(select(Message.status_code, Message.reserved)).all()
    finally:
        database.dispose()
    assert len(rows) == SUBMISSIONS and {code for code, _ in rows} == {100}
    return Decimal(sum(amount for _, amount in rows)) / MICROS


async def submit_all(url: str) -> list[dict[str, str]]:
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        answers = await asyncio.gather(*(client.post("/matrix_tts", data=TTS) for _ in range(SUBMISSIONS)))
    return [fields(answer.text) for answer in answers]


def start_serve(tmp_path: Path, processes: int) -> Server:
    """`ivrgate serve --no-worker --http-processes <processes>` on a fresh data directory (an owner with
    100.00, the sample rates), JSON logs in serve.log; answers once healthy."""
    data = tmp_path / "data"
    ivrgate(data, "user", "add", USERNAME, "--password", PASSWORD, "--credit", "100.00")
    ivrgate(data, "rates", "import", str(ROOT / "samples" / "rates.csv"))
    env = clean_env(IVRGATE_SERVER__LOG_FORMAT="json")
    return launch_serve(data, tmp_path / "serve.log", env, "--no-worker", "--http-processes", str(processes))


def test_two_http_processes_share_the_port_and_the_store(tmp_path: Path) -> None:
    server = start_serve(tmp_path, processes=2)
    proc, log, data = server.proc, server.log, server.data_dir
    try:
        wait_started(log, processes=2)
        before = server.balance()
        answers = asyncio.run(submit_all(server.url))
        assert [a.get("STATUSCODE") for a in answers] == ["200"] * SUBMISSIONS
        ids = {a["ID"] for a in answers}
        assert len(ids) == SUBMISSIONS
        statuses = {server.status(message_id)["STATUSCODE"] for message_id in list(ids)[:10]}
        assert statuses == {"100"}  # whichever process answers, it reads what the other wrote
        assert before - server.balance() == reserved(data) > 0  # the ledger holds each reservation once
        helpers = children(proc.pid)
        assert helpers, "no second HTTP process"
    finally:
        proc.terminate()
        code = proc.wait(60)
    assert code == 0, log.read_text()[-3000:]
    jobs = [line for line in log_entries(log) if re.match(r"job [0-9a-f]{32} of ", line["msg"])]
    writers = {line["pid"] for line in jobs}
    assert len(jobs) == SUBMISSIONS
    assert proc.pid in writers and writers & helpers, f"jobs by {writers}, processes {proc.pid}, {helpers}"
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in helpers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in helpers), "an HTTP process outlived serve"


def test_the_other_http_processes_end_when_the_first_is_killed(tmp_path: Path) -> None:
    server = start_serve(tmp_path, processes=3)
    proc, log = server.proc, server.log
    try:
        wait_started(log, processes=3)
        helpers = children(proc.pid)
    finally:
        proc.kill()  # no graceful shutdown: the others notice the first process is gone
        proc.wait(10)
    deadline = time.monotonic() + 15
    while any(Path(f"/proc/{pid}").exists() for pid in helpers) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [pid for pid in helpers if Path(f"/proc/{pid}").exists()]
    for pid in alive:  # never leave them behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not alive, "HTTP processes outlived a killed serve"


def log_entries(log: Path) -> list[dict[str, Any]]:
    """The JSON log entries of serve's log file, whole lines only (serve may be writing the last)."""
    return [json.loads(line) for line in log.read_text().split("\n")[:-1] if line.startswith("{")]


def started_pids(log: Path) -> set[int]:
    """The processes that logged uvicorn's start-up as complete."""
    return {line["pid"] for line in log_entries(log) if line["msg"] == "Application startup complete."}


def test_an_http_process_that_dies_is_started_again(tmp_path: Path) -> None:
    server = start_serve(tmp_path, processes=2)
    proc, log = server.proc, server.log
    try:
        wait_started(log, processes=2)
        (child,) = started_pids(log) - {proc.pid}
        os.kill(child, signal.SIGKILL)  # a process serve started, ended by its PID
        wait_started(log, processes=3)  # the first, the killed one, its successor
        (successor,) = started_pids(log) - {proc.pid, child}
        assert successor in children(proc.pid)
        answers = asyncio.run(submit_all(server.url))
        assert [a.get("STATUSCODE") for a in answers] == ["200"] * SUBMISSIONS
        assert "ended with -9; starting it again" in log.read_text()
    finally:
        proc.terminate()
        code = proc.wait(60)
    assert code == 0
