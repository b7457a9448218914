"""The SMTP session around the mail: the gateway address, one recipient, STARTTLS, the replies, and
`ivrgate serve` starting the gateway."""

from __future__ import annotations

import smtplib
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.core.jobs import Submitted
from api.core.settings import Settings
from api.fronts.smtp import REPLY_BUG, accepted_reply, error_reply, same_address
from store.errors import DatabaseUnavailable, WrongCredentials
from tests.integration.e2e.conftest import clean_env, free_tcp_port, ivrgate
from tests.integration.smtp.conftest import (
    ROOT,
    SAMPLES,
    USERNAME,
    Store,
    messages,
    serving,
    smtp_settings,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1."""
    directory = tmp_path_factory.mktemp("smtp-tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def test_only_the_gateway_address_is_accepted(store: Store) -> None:
    settings = Settings(data_dir=store.data_dir, smtp=smtp_settings(address="sms@gw.example"))
    with serving(settings, store.db) as running, smtplib.SMTP("127.0.0.1", running.port) as client:
        client.ehlo()
        client.mail(USERNAME)
        code, text = client.rcpt("someone@gw.example")
        assert (code, text.decode()) == (550, "5.1.1 mailbox unknown: mail the gateway at sms@gw.example")
        assert client.rcpt("<SMS@GW.example>")[0] == 250
        assert client.rcpt("sms@gw.example")[0] == 452  # one job per mail
        assert client.data((SAMPLES / "sms.eml").read_bytes())[0] == 250
    assert len(messages(store)) == 1


def test_starttls(store: Store, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    tls = smtp_settings(certfile=str(cert), keyfile=str(key), require_starttls=True)
    settings = Settings(data_dir=store.data_dir, smtp=tls)
    with serving(settings, store.db) as running:
        with smtplib.SMTP("127.0.0.1", running.port) as plain:
            plain.ehlo()
            assert plain.has_extn("starttls")
            code, _ = plain.mail(USERNAME)
            assert code == 530  # must issue STARTTLS first
        context = ssl.create_default_context(cafile=str(cert))
        with smtplib.SMTP("127.0.0.1", running.port) as client:
            client.starttls(context=context)
            assert client.sendmail(USERNAME, ["gateway@localhost"], (SAMPLES / "sms.eml").read_bytes()) == {}
    assert [m.kind for m in messages(store)] == ["sms"]


def test_reply_formats() -> None:
    assert error_reply(WrongCredentials("login refused for 'x'"), with_detail=False) == (
        "550 5.7.8 505 USER NOT FOUND OR WRONG PASSWORD")
    assert error_reply(DatabaseUnavailable("locked")).startswith("451 4.3.0 508 DATABASE ERROR")
    assert error_reply(RuntimeError("bug")) == REPLY_BUG
    one = Submitted("a" * 32, "+12501238585", 100, "Queued")
    blocked = Submitted("b" * 32, "+12501238586", 502, "PIN IN DO NOT CALL DATABASE")
    assert accepted_reply([one]) == f"250 2.0.0 200 OK ID: {'a' * 32}"
    assert accepted_reply([blocked]) == f"550 5.7.1 502 PIN IN DO NOT CALL DATABASE ID: {'b' * 32}"
    assert accepted_reply([one, blocked]).split("\r\n") == [
        f"250-2.0.0 200 OK ID: {'a' * 32} PHONE: +12501238585",
        f"250-2.0.0 502 PIN IN DO NOT CALL DATABASE ID: {'b' * 32} PHONE: +12501238586",
        "250 2.0.0 200 OK 1 of 2 queued",
    ]
    assert same_address(" <Gateway@LocalHost> ", "gateway@localhost")
    assert not same_address("gateway@localhost.evil", "gateway@localhost")


def test_several_recipients_get_one_line_each(store: Store) -> None:
    settings = Settings(data_dir=store.data_dir, smtp=smtp_settings())
    body = (SAMPLES / "sms.eml").read_bytes().replace(b"phone:12501238585", b"phone:12501238585,12501238586")
    with serving(settings, store.db) as running:
        code, text = running.send(body)
    assert code == 250
    lines = text.split("\n")
    assert len(lines) == 3 and lines[-1] == "2.0.0 200 OK 2 of 2 queued"
    given = sorted(line.split("ID: ")[1].split()[0] for line in lines[:2])
    assert given == sorted(m.id for m in messages(store))


@pytest.mark.slow  # a real `ivrgate serve` process (~5 s)
def test_serve_starts_the_smtp_gateway(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ivrgate(data, "user", "add", USERNAME, "--password", "mypass883", "--credit", "10.00")
    ivrgate(data, "rates", "import", str(ROOT / "samples" / "rates.csv"))
    smtp_port = free_tcp_port()
    # an SMSC that another node binds to (this serve only accepts): the SMS example is accepted
    env = clean_env(IVRGATE_SMTP__PORT=str(smtp_port), IVRGATE_SMS__SYSTEM_ID="ivrgate",
                    IVRGATE_SMS_SERVICE__ENABLED="false")
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "api", "--data", str(data), "serve", "--no-worker",
                                 "--port", str(free_tcp_port())], cwd=ROOT, env=env, stdout=sink,
                                stderr=subprocess.STDOUT)
    try:
        reply = _send_when_up(smtp_port, (SAMPLES / "sms.eml").read_bytes(), proc, log)
        assert reply[0] == 250 and reply[1].startswith("2.0.0 200 OK ID: "), reply
        proc.terminate()
        assert proc.wait(60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _send_when_up(port: int, mail: bytes, proc: subprocess.Popen[bytes], log: Path) -> tuple[int, str]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.ehlo()
                client.mail(USERNAME)
                client.rcpt("gateway@localhost")
                code, text = client.data(mail)
                return code, text.decode()
        except (ConnectionRefusedError, smtplib.SMTPServerDisconnected):
            time.sleep(0.2)
    raise AssertionError(f"no SMTP gateway on {port}: {log.read_text()}")
