"""SMS the way it ships: `ivrgate serve` (its default event loop: uvloop, installed with
uvicorn[standard]) and `ivrgate worker` as real subprocesses, bound to the test SMSC (tests/peers/smsc.js),
checked over the wire as a client sees it: `matrix` -> the SMSC's submit_sm -> its receipt -> `Delivered`
in `matrix_status`; an MO message to a virtual number -> the webhook POST with the seed's six fields.

The virtual number is written with store code (`store.lists.set_virtual_number`); the SMSC settings come
from IVRGATE_SMS__... environment variables, as an operator sets them (docs/sms.md)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from store import accounts, lists
from store.db import Database, resolve_url
from tests.integration.e2e.conftest import (
    PASSWORD,
    ROOT,
    USERNAME,
    Server,
    clean_env,
    fields,
    free_tcp_port,
    ivrgate,
    launch_serve,
    launch_worker,
)
from tests.integration.pool.conftest import free_block
from tests.integration.sms.conftest import smsc  # noqa: F401  (fixture)
from tests.integration.sms.peer import Smsc
from tests.integration.sms_gateway.conftest import Receiver, receiver, wait_for  # noqa: F401  (fixture)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NUMBER = "+12505550100"
"""The account's virtual number."""
PHONE = "12506063167"
"""The seed's example recipient."""
HANDSET = "+16045550199"
"""Where the MO message comes from."""
TEXT = "Adam, web server is down"
SEED_FIELDS = ["phonefrom", "phoneto", "id", "orgserver", "timestamp", "txt"]


def sms_env(peer: Smsc, **more: str) -> dict[str, str]:
    """The IVRGATE_... variables of an SMSC at `peer`, with test-sized timers."""
    return {"IVRGATE_SMS__HOST": "127.0.0.1", "IVRGATE_SMS__PORT": str(peer.port),
            "IVRGATE_SMS__SYSTEM_ID": "test", "IVRGATE_SMS__PASSWORD": "test",
            "IVRGATE_SMS__RECONNECT_MIN_S": "0.2", "IVRGATE_SMS_SERVICE__ORGSERVER": "gw.test",
            "IVRGATE_SMS_SERVICE__POLL_INTERVAL_S": "0.2", "IVRGATE_CALLBACKS__ALLOW_PRIVATE": "true",
            "IVRGATE_CALLBACKS__POLL_INTERVAL_S": "0.2", **more}


def sip_env() -> dict[str, str]:
    """A trunk nothing answers (no call is placed) and one engine process on free ports."""
    return {"IVRGATE_SIP__TRUNK_HOST": f"127.0.0.1:{free_tcp_port()}", "IVRGATE_SIP__PROCESSES": "1",
            "IVRGATE_SIP__PORT": str(free_block(1)), "IVRGATE_SIP__RTP_PORT": str(free_block(16)),
            "IVRGATE_SIP__RTP_PORTS_PER_PROCESS": "16"}


def add_virtual_number(data_dir: Path, webhook: str) -> None:
    database = Database.open(resolve_url("", data_dir))
    try:
        with database.transaction() as session:
            owner = accounts.find_account(session, USERNAME)
            assert owner is not None
            lists.set_virtual_number(session, NUMBER, owner.id, webhook, dt.datetime.now(dt.UTC))
    finally:
        database.dispose()


def prepared(data_dir: Path) -> Path:
    """A data directory set up with the CLI: the seed's account with credit, the sample rates."""
    ivrgate(data_dir, "user", "add", USERNAME, "--password", PASSWORD, "--credit", "10.00")
    ivrgate(data_dir, "rates", "import", str(ROOT / "samples" / "rates.csv"))
    return data_dir


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; each still running at the end is killed by its PID."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def start_serve(data_dir: Path, log: Path, env: dict[str, str], processes: list[subprocess.Popen[str]],
                *args: str) -> Server:
    server = launch_serve(data_dir, log, clean_env(**env), *args)
    processes.append(server.proc)
    return server


def log_records(log: Path) -> list[dict[str, Any]]:
    """The JSON log lines of a process (IVRGATE_SERVER__LOG_FORMAT=json), whole lines only."""
    text = log.read_text()
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines() if line.startswith("{")]


def logged(log: Path, pattern: str) -> list[str]:
    return [r["msg"] for r in log_records(log) if re.search(pattern, r.get("msg", ""))]


def matrix(server: Server, **form: str) -> dict[str, str]:
    data = {"username": USERNAME, "password": PASSWORD, **form}
    return fields(httpx.post(f"{server.url}/matrix", data=data, timeout=30).text)


def check_mt_delivered(server: Server, peer: Smsc) -> None:
    """matrix -> submit_sm at the SMSC (text, addresses) -> receipt -> matrix_status Delivered."""
    answer = matrix(server, phone=PHONE, txt=TEXT, callerid=NUMBER.lstrip("+"))
    assert (answer["STATUSCODE"], answer["STATUSTXT"]) == ("200", "OK"), answer
    final = server.wait_final(answer["ID"], timeout=60)
    assert (final["STATUSCODE"], final["STATUSTXT"]) == ("200", "Delivered"), final
    (submit,) = [s for s in peer.state()["submits"] if s["destination"] == "1" + PHONE[1:]]
    assert (submit["text"], submit["source"], submit["data_coding"]) == (TEXT, NUMBER[1:], 0)
    assert submit["registered_delivery"] & 1
    assert peer.state()["stats"]["deliver_ok"] >= 1  # the receipt was acknowledged


def check_mo_webhook(server: Server, peer: Smsc, hook: Receiver) -> None:
    """An MO message to the virtual number -> one POST with the seed's six fields, in the seed's order."""
    peer.wait_receiver()
    peer.send_mo(HANDSET, NUMBER, "Running late, 10 min")
    wait_for(lambda: hook.requests, timeout_s=60, what="the webhook POST")
    (request,) = hook.requests
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers.get("X-Ivrgate-Signature", "").startswith("sha256=")
    form = dict(parse_qsl(request.body.decode()))
    assert list(form) == SEED_FIELDS
    assert (form["phonefrom"], form["phoneto"], form["txt"]) == (HANDSET, NUMBER, "Running late, 10 min")
    assert form["orgserver"] == "gw.test" and re.fullmatch(r"[0-9a-f]{32}", form["id"])
    assert abs(int(form["timestamp"]) - dt.datetime.now(dt.UTC).timestamp()) < 3600
    received = server.status(form["id"])  # the MO message is in the owner's history
    assert (received["STATUSCODE"], received["STATUSTXT"]) == ("200", "Received"), received


def test_serve_sends_and_receives_sms_on_its_default_loop(
    tmp_path: Path, smsc: Smsc, receiver: Receiver,  # noqa: F811
    processes: list[subprocess.Popen[str]],
) -> None:
    assert importlib.util.find_spec("uvloop") is not None  # installed, so serve's loop="auto" takes it
    data = prepared(tmp_path / "data")
    add_virtual_number(data, receiver.url)
    log = tmp_path / "serve.log"
    env = {**sip_env(), **sms_env(smsc), "IVRGATE_SERVER__LOG_FORMAT": "json"}
    server = start_serve(data, log, env, processes)

    wait_for(lambda: logged(log, r"^SMS node up"), what="the SMS node's start")
    (up,) = logged(log, r"^SMS node up")
    assert up.endswith("(event loop uvloop.Loop)"), up
    check_mt_delivered(server, smsc)
    health = httpx.get(f"{server.url}/healthz").json()["sms"]
    assert health["binds"] == [{"mode": "transceiver", "state": "bound"}] and health["receipts_pending"] == 0
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'ivrgate_smpp_bind_state{bind="transceiver",state="bound"} 1.0' in metrics
    check_mo_webhook(server, smsc, receiver)
    assert not logged(log, r"not connected|not a stream transport|SMS is not configured")
    assert server.stop() == 0


def test_worker_carries_sms_behind_an_api_only_serve(
    tmp_path: Path, smsc: Smsc, receiver: Receiver,  # noqa: F811
    processes: list[subprocess.Popen[str]],
) -> None:
    """`serve --no-worker` with the SMS node off (an API node: it still accepts SMS, since the deployment
    has an SMSC) and `ivrgate worker`, which binds, sends, takes receipts and MO, and sends the webhook."""
    data = prepared(tmp_path / "data")
    add_virtual_number(data, receiver.url)
    api_env = {**sms_env(smsc), "IVRGATE_SMS_SERVICE__ENABLED": "false", "IVRGATE_SERVER__LOG_FORMAT": "json"}
    server = start_serve(data, tmp_path / "serve.log", api_env, processes, "--no-worker")

    worker_log = tmp_path / "worker.log"
    worker_env = clean_env(IVRGATE_DATA_DIR=str(data), IVRGATE_SERVER__LOG_FORMAT="json",
                           IVRGATE_WORKER__WORKER_ID="node2", **sip_env(), **sms_env(smsc))
    worker = launch_worker(worker_env, worker_log, processes,
                           "ivrgate: worker node2 ready (1 engine processes, sqlite, callbacks on, sms on)")

    check_mt_delivered(server, smsc)
    check_mo_webhook(server, smsc, receiver)
    assert list(smsc.state()["bound"]) == ["transceiver"]  # one bind: the worker's, not serve's
    assert logged(worker_log, r"^SMS node up") and not logged(tmp_path / "serve.log", r"^SMS node up")
    os.kill(worker.pid, signal.SIGTERM)
    assert worker.wait(60) == 0
    assert server.stop() == 0


def test_serve_without_an_smsc_says_so_and_refuses_sms(
    tmp_path: Path, processes: list[subprocess.Popen[str]],
) -> None:
    """No IVRGATE_SMS__...: one plain warning at start-up, and `matrix` answers the documented refusal
    instead of queueing (and holding money for) an SMS that could never go."""
    data = prepared(tmp_path / "data")
    log = tmp_path / "serve.log"
    server = start_serve(data, log, {**sip_env(), "IVRGATE_SERVER__LOG_FORMAT": "json"}, processes)
    before = server.balance()
    answer = matrix(server, phone=PHONE, txt=TEXT)
    assert (answer["STATUSCODE"], answer["STATUSTXT"]) == ("500", "ERROR: SMS NOT CONFIGURED"), answer
    assert server.balance() == before
    health = httpx.get(f"{server.url}/healthz").json()
    assert health["status"] == "ok" and health["sms"] == {"configured": False}
    assert server.stop() == 0
    (warning,) = logged(log, r"^SMS is not configured")
    assert "IVRGATE_SMS__SYSTEM_ID" in warning and "ERROR: SMS NOT CONFIGURED" in warning


def test_sms_only_gateway_needs_no_sip_trunk(
    tmp_path: Path, smsc: Smsc, receiver: Receiver,  # noqa: F811
    processes: list[subprocess.Popen[str]],
) -> None:
    """`serve --no-worker` with an SMSC and no SIP settings: it sends SMS and, running the SMS node,
    sends the MO webhooks too (the callback sender runs wherever the SMS node runs)."""
    data = prepared(tmp_path / "data")
    add_virtual_number(data, receiver.url)
    env = {**sms_env(smsc), "IVRGATE_SERVER__LOG_FORMAT": "json"}
    server = start_serve(data, tmp_path / "serve.log", env, processes, "--no-worker")
    check_mt_delivered(server, smsc)
    check_mo_webhook(server, smsc, receiver)
    assert server.stop() == 0
