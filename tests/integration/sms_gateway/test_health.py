"""/healthz and /metrics of a node running the SMS node: each bind's state (bound, binding, refused with
the SMSC's reason, down), the window in use, throttling and the receipts still pending; and the
refusal of SMS on a deployment without an SMSC, on every front (legacy, v1, SMTP, GUI)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.core.settings import Settings, SmsSettings
from api.fronts.app import create_app
from sms.smpp import SmppSettings
from store.models import Message
from tests.integration.nodes import node_client
from tests.integration.sms.conftest import settings_for
from tests.integration.sms.peer import Smsc, free_port
from tests.integration.sms_gateway.conftest import PASSWORD, SMS_NODE, USER, Gw, seed, wait_for

PHONE = "+12505550123"


def sms_health(client: TestClient) -> dict[str, Any]:
    answer = client.get("/healthz")
    assert answer.status_code == 200, answer.text  # SMS state never makes the node unhealthy
    sms: dict[str, Any] = answer.json()["sms"]
    return sms


def metric(client: TestClient, name: str, labels: str = "") -> float:
    text = client.get("/metrics").text
    found = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    assert found, (name, labels, text)
    return float(found.group(1))


@pytest.fixture
def app_with(tmp_path: Path) -> Iterator[Any]:
    """A node (its SMS node beside the app) on a seeded store, with the SMPP settings given."""
    running = contextlib.ExitStack()

    def start(sms: SmppSettings) -> TestClient:
        seed(tmp_path, "")
        settings = Settings(data_dir=tmp_path, sms=sms, sms_service=SmsSettings(poll_interval_s=0.1))
        client, _ = running.enter_context(
            node_client(settings, SMS_NODE, raise_server_exceptions=False))
        return client

    with running:
        yield start


def test_bound_window_throttling_and_receipts_pending(gw: Gw) -> None:
    health = sms_health(gw.client)
    assert health["configured"] and health["node"]
    assert health["binds"] == [{"mode": "transceiver", "state": "bound"}]
    assert health["window"] == gw.settings.sms.window and health["throttled"] == 0
    assert metric(gw.client, "ivrgate_smpp_bind_state", '{bind="transceiver",state="bound"}') == 1.0
    assert metric(gw.client, "ivrgate_smpp_bind_state", '{bind="transceiver",state="refused"}') == 0.0

    gw.smsc.configure(dlr=False, throttle_next=2)  # no receipts: the message waits at 110
    answer = gw.get("matrix", phone=PHONE, txt="waiting for its receipt")
    wait_for(lambda: gw.get("matrix_status", id=answer["ID"])["STATUSCODE"] == "110", what="110")
    health = sms_health(gw.client)
    assert health["receipts_pending"] == 1
    assert health["throttled"] == 2 == gw.smsc.state()["stats"]["throttled"]
    assert health["window_in_use"] == 0 and health["in_flight"] == 0
    assert metric(gw.client, "ivrgate_sms_receipts_pending") == 1.0
    assert metric(gw.client, "ivrgate_smpp_throttled_total") == 2.0
    assert metric(gw.client, "ivrgate_smpp_parts_total", '{outcome="accepted"}') == 1.0
    assert metric(gw.client, "ivrgate_smpp_window_in_use") == 0.0


def test_refused_bind_shows_the_smscs_reason(app_with: Any, smsc: Smsc) -> None:
    client = app_with(settings_for(smsc, password="wrong"))
    wait_for(lambda: smsc.state()["stats"]["bind_failures"] >= 1, what="a refused bind")
    health = wait_for(lambda: (h := sms_health(client))["binds"][0]["state"] != "binding" and h,
                      what="the refusal recorded")
    (bind,) = health["binds"]
    assert bind["state"] in ("refused", "binding")  # retried with backoff: binding again keeps the reason
    assert bind["reason"] == "bind_transceiver refused: ESME_RBINDFAIL"
    assert metric(client, "ivrgate_smpp_bind_state", '{bind="transceiver",state="bound"}') == 0.0


def test_unreachable_smsc_is_down_with_the_reason(app_with: Any) -> None:
    port = free_port()  # nothing listens there
    client = app_with(SmppSettings(port=port, system_id="test", password="test", reconnect_min_s=0.1,
                                   reconnect_max_s=0.5))
    health = wait_for(lambda: "reason" in (h := sms_health(client))["binds"][0] and h, what="a failure")
    (bind,) = health["binds"]
    assert bind["state"] in ("down", "binding")
    assert bind["reason"].startswith(f"connecting to 127.0.0.1:{port}: ")


# --- SMS not configured ------------------------------------------------------------------------------

NOT_CONFIGURED = ("500", "ERROR: SMS NOT CONFIGURED")


@pytest.fixture
def no_smsc(tmp_path: Path) -> Iterator[TestClient]:
    seed(tmp_path, "")
    with TestClient(create_app(Settings(data_dir=tmp_path))) as client:
        yield client


def stored(client: TestClient) -> int:
    with client.app.state.gateway.db.read() as session:  # type: ignore[attr-defined]
        return int(session.query(Message).count())


def test_not_configured_health_and_legacy_refusal(no_smsc: TestClient) -> None:
    assert sms_health(no_smsc) == {"configured": False}
    assert "ivrgate_smpp_" not in no_smsc.get("/metrics").text
    form = {"username": USER, "password": PASSWORD, "phone": PHONE, "txt": "never sent"}
    text = no_smsc.post("/matrix", data=form).text
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    assert (fields["STATUSCODE"], fields["STATUSTXT"]) == NOT_CONFIGURED
    answer = no_smsc.post("/matrix.json", data=form).json()
    assert (answer["STATUSCODE"], answer["STATUSTXT"]) == (500, NOT_CONFIGURED[1])
    # the request's own errors come first
    bad = no_smsc.post("/matrix", data={**form, "txt": ""}).text
    assert "STATUSCODE: 511" in bad
    assert stored(no_smsc) == 0


def test_transmitter_and_receiver_binds_each_shown(app_with: Any, smsc: Smsc) -> None:
    client = app_with(settings_for(smsc, bind="transmitter+receiver"))
    both = [{"mode": "transmitter", "state": "bound"}, {"mode": "receiver", "state": "bound"}]
    wait_for(lambda: sms_health(client)["binds"] == both, what="both binds")
    assert sorted(smsc.state()["bound"]) == ["receiver", "transmitter"]
    assert metric(client, "ivrgate_smpp_bind_state", '{bind="receiver",state="bound"}') == 1.0
