"""SMTP gateway fixtures: a migrated SQLite store holding the seed's example account (user78@hotmail.com,
mypass883) with credit and the +1 rates, and the real SMTP gateway (api.fronts.smtp.running_smtp) as a peer
of a
node (api.runtime.node.Node) on a free port of 127.0.0.1, run on an event loop in a background thread,
optionally
with the voice worker and its engine pool beside it (the built-in test phone, in its own process, is the
trunk)."""

from __future__ import annotations

import asyncio
import dataclasses
import smtplib
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api.core.service import Gateway
from api.core.settings import Settings, SmtpSettings, sms_configured
from api.runtime.node import Node, NodeOptions
from store.db import Database
from store.models import Message
from tests.integration.sms_settings import smsc_elsewhere
from tests.integration.worker.conftest import (  # fixtures re-exported for this directory
    BALANCE,
    PhoneProcess,
    Sipp,
    Store,
    make_store,
    phone,
    sipp,
    sipp_workdir,
    worker_settings,
)

__all__ = ["BALANCE", "PhoneProcess", "Sipp", "Store", "phone", "sipp", "sipp_workdir", "worker_settings"]

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "samples" / "mail"
USERNAME, PASSWORD = "user78@hotmail.com", "mypass883"
GATEWAY_ADDRESS = "gateway@localhost"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = make_store(tmp_path / "data", USERNAME, PASSWORD)
    yield made
    made.db.dispose()


def messages(store: Store) -> list[Message]:
    """Every message in the store, oldest first."""
    with store.db.read() as s:
        rows = list(s.query(Message).order_by(Message.created_at))
        for row in rows:
            s.expunge(row)
        return rows


def smtp_settings(**overrides: Any) -> SmtpSettings:
    return SmtpSettings(**{"port": 0, "address": GATEWAY_ADDRESS, **overrides})


@dataclass
class Running:
    """A gateway served in a background thread: its SMTP port and the Gateway behind it."""

    port: int
    gateway: Gateway

    def send(self, mail: bytes, sender: str = USERNAME, to: str = GATEWAY_ADDRESS) -> tuple[int, str]:
        """Send with smtplib the plain way (MAIL, RCPT, DATA); the DATA reply (code, text)."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=60) as client:
            client.ehlo()
            code, text = client.mail(sender)
            assert code == 250, text
            code, text = client.rcpt(to)
            if code != 250:
                return code, text.decode()
            code, text = client.data(mail)
            return code, text.decode()


@contextmanager
def serving(settings: Settings, db: Database, *, with_worker: bool = False,
            smsc: bool = True, runner: Callable[[Coroutine[Any, Any, None]], None] = asyncio.run,
            ) -> Iterator[Running]:
    """Run a node (api.runtime.node.Node) with the SMTP gateway (and, with_worker, the voice worker, woken by
    every submission) on `db`, on a loop in a thread (`runner`: asyncio.run, or uvloop.run as `serve`
    runs it); stop it at the end. With `smsc` the deployment has an SMSC that another process binds to
    (smsc_elsewhere), so SMS are accepted; without it they are refused (SMS NOT CONFIGURED)."""
    if smsc and not sms_configured(settings):
        settings = smsc_elsewhere(settings)
    ready = threading.Event()
    found: dict[str, Any] = {}
    settings = settings.model_copy(update={"worker": dataclasses.replace(settings.worker, worker_id="smtp")})

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        node = Node(settings, NodeOptions(smtp=True, voice=with_worker), database=db)
        try:
            async with node.running():
                assert node.smtp is not None
                found.update(port=node.smtp.port, gateway=node.gateway,
                             stop=lambda: loop.call_soon_threadsafe(stop.set))
                ready.set()
                await stop.wait()
        finally:
            node.close()
            ready.set()

    errors: list[BaseException] = []

    def run() -> None:
        try:
            runner(main())
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    thread = threading.Thread(target=run, name="smtp-test-loop")
    thread.start()
    ready.wait(120)
    if "port" not in found:
        thread.join(10)
        raise AssertionError(f"the gateway did not start: {errors}")
    try:
        yield Running(found["port"], found["gateway"])
    finally:
        found["stop"]()
        thread.join(120)
        assert not thread.is_alive(), "the gateway loop did not stop"
        assert not errors, errors
