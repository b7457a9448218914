"""The node (api.runtime.node.Node) as `ivrgate serve` and `ivrgate worker` run it, as real subprocesses:
every
peer started in order, SIGTERM stopping them in the reverse order with exit status 0, and a worker node
carrying SMS (the test SMSC, tests/peers/smsc.js) and voice (the built-in test phone) together."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.integration.e2e.conftest import (
    PASSWORD,
    USERNAME,
    PhoneProcess,
    clean_env,
    fields,
    launch_worker,
)
from tests.integration.e2e.test_sms_serve import (
    PHONE,
    check_mt_delivered,
    logged,
    prepared,
    processes,  # noqa: F401  (fixture)
    sip_env,
    sms_env,
    start_serve,
)
from tests.integration.pool.conftest import free_block
from tests.integration.sms.conftest import smsc  # noqa: F401  (fixture)
from tests.integration.sms.peer import Smsc
from tests.integration.sms_gateway.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVE_PEERS = ["callbacks", "voice", "sms", "smtp", "http"]
"""`ivrgate serve`'s peers in start-up order, with an SMSC set and SMTP on."""


def peer_events(log: Path, event: str) -> list[str]:
    """The peers named by the node's `node: <peer> <event>` lines, in the order logged."""
    return [re.sub(rf"^node: (\w+) {event}$", r"\1", msg) for msg in logged(log, rf"^node: \w+ {event}$")]


def test_sigterm_stops_every_peer_of_serve_in_order(
    tmp_path: Path, smsc: Smsc,  # noqa: F811
    processes: list[subprocess.Popen[str]],  # noqa: F811
) -> None:
    data = prepared(tmp_path / "data")
    log = tmp_path / "serve.log"
    env = {**sip_env(), **sms_env(smsc), "IVRGATE_SERVER__LOG_FORMAT": "json"}
    server = start_serve(data, log, env, processes)
    assert peer_events(log, "started") == SERVE_PEERS
    health = httpx.get(f"{server.url}/healthz").json()
    assert health["sms"]["binds"] == [{"mode": "transceiver", "state": "bound"}]
    check_mt_delivered(server, smsc)  # the HTTP front, the SMS sender and its receipt, while all run

    assert server.stop() == 0
    assert peer_events(log, "stopped") == SERVE_PEERS[::-1]
    assert logged(log, r"^node: SIGTERM received$") and logged(log, r"^node: down$")
    assert "Traceback" not in log.read_text()
    wait_for(lambda: smsc.state()["bound"] == [], what="the bind closed")


def test_worker_node_carries_sms_and_voice(
    tmp_path: Path, smsc: Smsc, phone: Callable[..., PhoneProcess],  # noqa: F811
    processes: list[subprocess.Popen[str]],  # noqa: F811
) -> None:
    """An API-only `serve` (no worker, no SMS node) takes a TTS message and an SMS; `ivrgate worker`, one
    node with the voice worker and the SMS node, dials the one and sends the other."""
    far = phone("--wait", "1", calls=1)
    data = prepared(tmp_path / "data")
    api_env = {**sms_env(smsc), "IVRGATE_SMS_SERVICE__ENABLED": "false", "IVRGATE_SERVER__LOG_FORMAT": "json"}
    server = start_serve(data, tmp_path / "serve.log", api_env, processes, "--no-worker")

    block = free_block(17)
    worker_log = tmp_path / "worker.log"
    worker_env = clean_env(IVRGATE_DATA_DIR=str(data), IVRGATE_SERVER__LOG_FORMAT="json",
                           IVRGATE_SIP__TRUNK_HOST=f"127.0.0.1:{far.port}", IVRGATE_SIP__PROCESSES="1",
                           IVRGATE_SIP__PORT=str(block + 16), IVRGATE_SIP__RTP_PORT=str(block),
                           IVRGATE_SIP__RTP_PORTS_PER_PROCESS="16", IVRGATE_DIALER__RESPONSE_TIMEOUT_S="8",
                           IVRGATE_DIALER__MAX_CALL_S="60", IVRGATE_WORKER__WORKER_ID="caller",
                           **sms_env(smsc))
    worker = launch_worker(worker_env, worker_log, processes,
                           "ivrgate: worker caller ready (1 engine processes, sqlite, callbacks on, sms on)")
    assert peer_events(worker_log, "started") == ["callbacks", "voice", "sms"]

    tts = fields(httpx.post(f"{server.url}/matrix_tts", timeout=30, data={
        "username": USERNAME, "password": PASSWORD, "phone": PHONE, "txt": "Adam, web server is down"}).text)
    assert tts["STATUSCODE"] == "200", tts
    check_mt_delivered(server, smsc)
    final = server.wait_final(tts["ID"])
    assert re.fullmatch(r"Voice call answered, duration \d+ seconds\.", final["STATUSTXT"]), final
    assert [call["answered"] for call in far.results(timeout=30)] == [True]
    assert list(smsc.state()["bound"]) == ["transceiver"]  # the worker's bind: serve runs no SMS node

    os.kill(worker.pid, signal.SIGTERM)
    assert worker.wait(60) == 0
    assert peer_events(worker_log, "stopped") == ["sms", "voice", "callbacks"]
    wait_for(lambda: smsc.state()["bound"] == [], what="the bind closed")
    assert server.stop() == 0
