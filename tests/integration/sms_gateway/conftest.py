"""SMS through the whole gateway: the node SMSC peer, a seeded SQLite store, and a node
(api.runtime.node.Node)
with its SMS node running beside the app, as `ivrgate serve` runs it, the app behind a TestClient."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.core.service import Gateway
from api.core.settings import Settings, SmsSettings
from api.core.signing import CallbackSettings
from api.runtime.node import NodeOptions
from store import accounts, ledger, lists, rating
from store.db import Database, resolve_url
from tests.integration.nodes import node_client
from tests.integration.sms.conftest import settings_for, smsc  # noqa: F401  (fixture)
from tests.integration.sms.peer import Smsc

pytestmark = pytest.mark.integration

USER, PASSWORD = "owner@example.com", "pass7782"
NUMBER = "+12505550100"
"""The account's virtual number."""
SMS_RATE = 7500
FUNDS = 10_000_000
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
SMS_NODE = NodeOptions(http=True, sms=True, callbacks=True)
"""What `ivrgate serve --no-worker` runs with an SMSC set, without its SMTP gateway."""


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that answers 200 and keeps every request."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)


@dataclass
class Gw:
    """The running app, its gateway and the peers around it."""

    client: TestClient
    gateway: Gateway
    smsc: Smsc
    receiver: Receiver
    settings: Settings

    def get(self, route: str, **params: Any) -> dict[str, str]:
        """A legacy GET with the account's credentials; the answer's first block as a dict."""
        answer = self.client.get(f"/{route}", params={"username": USER, "password": PASSWORD, **params})
        assert answer.status_code == 200, answer.text
        block = answer.text.strip().split("\n\n")[0]
        return dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)


def wait_for(condition: Callable[[], Any], timeout_s: float = 20.0, what: str = "") -> Any:
    """Poll until `condition()` is truthy (a hang guard, not a timing check)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.requests.append(Received(dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/incoming"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


def seed(data_dir: Path, webhook: str) -> None:
    db = Database.open(resolve_url("", data_dir))
    db.upgrade()
    with db.transaction() as session:
        owner = accounts.create_account(session, username=USER, password=PASSWORD, now=NOW)
        ledger.top_up(session, owner.id, FUNDS, NOW)
        rating.import_rates(session, rating.parse_rates_csv("prefix,sms,voice,tts\n1,0.0075,0.013,0.015\n"))
        lists.set_virtual_number(session, NUMBER, owner.id, webhook, NOW)
    db.dispose()


@pytest.fixture
def gw(request: pytest.FixtureRequest, tmp_path: Path, smsc: Smsc, receiver: Receiver) -> Iterator[Gw]:  # noqa: F811
    """The app; `@pytest.mark.sms_service(name=value, ...)` on a test changes its SmsSettings."""
    seed(tmp_path, receiver.url)
    marker = request.node.get_closest_marker("sms_service")
    service: dict[str, Any] = {"poll_interval_s": 0.1, "orgserver": "gw.test",
                               "help_text": "Test alerts. Reply STOP.", "stop_reply": "Unsubscribed.",
                               **(marker.kwargs if marker else {})}
    settings = Settings(
        data_dir=tmp_path,
        sms=settings_for(smsc),
        sms_service=SmsSettings(**service),
        callbacks=CallbackSettings(allow_private=True, secret="s" * 40),
    )
    options = NodeOptions(http=True, sms=True)  # no callback sender: the tests send the outbox themselves
    with node_client(settings, options, raise_server_exceptions=False) as (client, node):
        smsc.wait_receiver()  # the SMS node binds in the background once it has started
        yield Gw(client, node.gateway, smsc, receiver, settings)
