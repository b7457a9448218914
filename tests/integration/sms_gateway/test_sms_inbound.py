"""Incoming SMS through the whole gateway and the node SMSC: national numbers read in the default
region (a STOP blocks the right number), parts of a long message stored across a restart of the gateway
process, and a message whose parts stop coming forwarded with `parts=1/2`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from store import lists, mo_parts
from store.db import Database, resolve_url
from tests.integration.sms.conftest import smsc  # noqa: F401  (fixture)
from tests.integration.sms.peer import Smsc, free_port
from tests.integration.sms_gateway.conftest import (  # noqa: F401  (fixture)
    NUMBER,
    PASSWORD,
    USER,
    Gw,
    Receiver,
    receiver,
    seed,
    wait_for,
)
from tests.integration.sms_gateway.running import running_gateway

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
NATIONAL, UNKNOWN = 2, 0
LONG_TEXT = "Running late: the train stopped outside the station and nobody says why. " * 3
"""Two GSM-7 parts as the test SMSC splits it."""


def webhooks(receiver: Receiver) -> list[dict[str, str]]:  # noqa: F811
    return [dict(parse_qsl(request.body.decode())) for request in receiver.requests]


def mo_answers(peer: Smsc) -> list[int]:
    """The ESME's answers (command_status) to the MO deliver_sm the SMSC sent."""
    return [d["status"] for d in peer.state()["delivers"] if d["what"] == "mo"]


@pytest.fixture
def gw_fast(tmp_path: Path, smsc: Smsc, receiver: Receiver) -> Iterator[Gw]:  # noqa: F811
    """The app in-process (as the other SMS gateway tests), with a short MO timeout."""
    with running_gateway(tmp_path, smsc, receiver, mo_timeout_s=1.0) as gw:
        yield gw


def get(gw: Gw, route: str, **params: Any) -> dict[str, str]:
    answer = gw.client.get(f"/{route}", params={"username": USER, "password": PASSWORD, **params})
    assert answer.status_code == 200, answer.text
    return dict(line.split(": ", 1) for line in answer.text.splitlines() if ": " in line)


@pytest.mark.parametrize("ton", [NATIONAL, UNKNOWN])
def test_national_stop_blocks_the_e164_number_and_a_later_sms_is_refused(gw_fast: Gw, ton: int) -> None:
    gw_fast.smsc.send_mo("2505553000", NUMBER, "STOP", source_ton=ton)
    wait_for(lambda: webhooks(gw_fast.receiver), what="the STOP's webhook")
    (hook,) = webhooks(gw_fast.receiver)
    assert (hook["phonefrom"], hook["phoneto"], hook["txt"]) == ("+12505553000", NUMBER, "STOP")
    with gw_fast.gateway.db.read() as session:
        owner = lists.virtual_number(session, NUMBER)
        assert owner is not None
        assert lists.blocked(session, owner.account_id, ["+12505553000", "+2505553000"]) == {"+12505553000"}
    for written in ("2505553000", "+1 250 555 3000"):
        answer = get(gw_fast, "matrix", phone=written, txt="Another alert")
        assert (answer["STATUSCODE"], answer["STATUSTXT"]) == ("502", "PIN IN DO NOT CALL DATABASE")


def test_mo_to_the_virtual_number_written_nationally_is_delivered(gw_fast: Gw) -> None:
    gw_fast.smsc.send_mo("+16045550199", NUMBER.removeprefix("+1"), "hello", dest_ton=NATIONAL)
    wait_for(lambda: webhooks(gw_fast.receiver), what="the webhook")
    (hook,) = webhooks(gw_fast.receiver)
    assert (hook["phonefrom"], hook["phoneto"], hook["txt"]) == ("+16045550199", NUMBER, "hello")


def test_a_message_whose_last_part_never_comes_is_forwarded_as_parts_1_of_2(gw_fast: Gw) -> None:
    gw_fast.smsc.send_mo("+16045550199", NUMBER, LONG_TEXT, parts=2, ref=77, only=[1])
    wait_for(lambda: webhooks(gw_fast.receiver), what="the incomplete message's webhook")
    (hook,) = webhooks(gw_fast.receiver)
    assert hook["parts"] == "1/2" and LONG_TEXT.startswith(hook["txt"]) and hook["txt"] != LONG_TEXT
    assert list(hook)[:6] == ["phonefrom", "phoneto", "id", "orgserver", "timestamp", "txt"]
    assert mo_answers(gw_fast.smsc) == [0]


class GatewayProcess:
    """tests/integration/sms_gateway/app_process.py as a child process, ended by its PID."""

    def __init__(self, data_dir: Path, peer: Smsc, log: Path) -> None:
        self.env = {**os.environ, "IVRGATE_DATA_DIR": str(data_dir), "IVRGATE_SERVER__PORT": str(free_port()),
                    "IVRGATE_SMS__PORT": str(peer.port), "IVRGATE_SMS__SYSTEM_ID": "test",
                    "IVRGATE_SMS__PASSWORD": "test", "IVRGATE_SMS__RECONNECT_MIN_S": "0.1",
                    "IVRGATE_SMS__MO_TIMEOUT_S": "3600", "IVRGATE_SMS_SERVICE__POLL_INTERVAL_S": "0.1",
                    "IVRGATE_SMS_SERVICE__ORGSERVER": "gw.test",
                    "IVRGATE_CALLBACKS__ALLOW_PRIVATE": "true", "IVRGATE_CALLBACKS__SECRET": "s" * 40,
                    "IVRGATE_CALLBACKS__POLL_INTERVAL_S": "0.1", "IVRGATE_WORKER__ENABLED": "false"}
        self.peer, self.log = peer, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binds = self.peer.state()["stats"]["binds"]
        with self.log.open("ab") as out:
            command = [sys.executable, "-m", "tests.integration.sms_gateway.app_process"]
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT)
        # bound when the SMSC counted a new bind and a receiving session of it is up
        wait_for(lambda: self._exited() or self.peer.state()["stats"]["binds"] > binds, timeout_s=60.0,
                 what="the gateway process to bind")
        assert not self._exited(), self.log.read_text()[-3000:]
        # and the SMSC saw the killed process's session end, so an MO cannot go to it
        wait_for(lambda: self.peer.state()["bound"] == ["transceiver"], what="one bound session")

    def _exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def kill(self) -> None:
        """SIGKILL by PID: a crash, nothing flushed."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None


def test_gateway_restarted_between_the_parts_forwards_the_whole_text_once(
        tmp_path: Path, smsc: Smsc, receiver: Receiver) -> None:  # noqa: F811
    seed(tmp_path, receiver.url)
    gateway = GatewayProcess(tmp_path, smsc, tmp_path / "gateway.log")
    gateway.start()
    try:
        smsc.send_mo("+16045550199", NUMBER, LONG_TEXT, parts=2, ref=91, only=[1])
        wait_for(lambda: mo_answers(smsc) == [0], what="part 1 acknowledged")  # stored before the answer
        db = Database.open(resolve_url("", tmp_path))
        try:
            with db.read() as session:
                assert mo_parts.pending(session) == 1
        finally:
            db.dispose()
        gateway.kill()
        gateway.start()
        smsc.send_mo("+16045550199", NUMBER, LONG_TEXT, parts=2, ref=91, only=[2])
        wait_for(lambda: webhooks(receiver), timeout_s=30.0, what="the webhook")
        wait_for(lambda: mo_answers(smsc) == [0, 0], what="part 2 acknowledged")
    finally:
        gateway.kill()
    (hook,) = webhooks(receiver)
    assert hook["txt"] == LONG_TEXT and "parts" not in hook
    assert (hook["phonefrom"], hook["phoneto"]) == ("+16045550199", NUMBER)
