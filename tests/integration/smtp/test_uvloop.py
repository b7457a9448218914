"""The SMTP gateway on uvloop, the loop `ivrgate serve` runs it on: aiosmtpd's STARTTLS swaps the
transport's protocol for asyncio's SSLProtocol, which must work on uvloop's transports too."""

from __future__ import annotations

import smtplib
import ssl
from pathlib import Path

import pytest
import uvloop

from api.core.settings import Settings
from tests.integration.smtp.conftest import SAMPLES, USERNAME, Store, messages, serving, smtp_settings
from tests.integration.smtp.test_server import certificate

__all__ = ["certificate"]
pytestmark = pytest.mark.integration


def test_starttls_and_a_job_on_uvloop(store: Store, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    settings = Settings(data_dir=store.data_dir, smtp=smtp_settings(certfile=str(cert), keyfile=str(key),
                                                                    require_starttls=True))
    mail = (SAMPLES / "sms.eml").read_bytes()
    with serving(settings, store.db, runner=uvloop.run) as running, \
            smtplib.SMTP("127.0.0.1", running.port, timeout=30) as client:
        client.starttls(context=ssl.create_default_context(cafile=str(cert)))
        assert client.sendmail(USERNAME, ["gateway@localhost"], mail) == {}
    assert [m.kind for m in messages(store)] == ["sms"]
