"""Bad mails sent with smtplib to the real SMTP gateway: each is answered inside the session with its
documented reply (docs/smtp.md) and leaves nothing in the store."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from email.mime.text import MIMEText

import pytest

from api.core.settings import Settings
from tests.integration.smtp.conftest import (
    PASSWORD,
    USERNAME,
    Running,
    Store,
    messages,
    serving,
    smtp_settings,
)

pytestmark = pytest.mark.integration
FIELDS = f"username:{USERNAME} password:{PASSWORD} phone:12501238585 callerid:13451238585"


def mail(body: str, charset: str = "utf-8", subtype: str = "plain") -> bytes:
    message = MIMEText(body, subtype, charset)
    message["From"], message["To"], message["Subject"] = USERNAME, "gateway@localhost", "job"
    return message.as_bytes()


def raw(body: bytes, content_type: str) -> bytes:
    head = (f"From: {USERNAME}\r\nTo: gateway@localhost\r\nSubject: job\r\n"
            f"Content-Type: {content_type}\r\n\r\n")
    return head.encode() + body + b"\r\n"


@pytest.fixture
def running(store: Store) -> Iterator[Running]:
    settings = Settings(data_dir=store.data_dir, smtp=smtp_settings(max_bytes=1024 * 1024))
    with serving(settings, store.db) as server:
        yield server


CASES = {
    "wrong password": (
        mail(f"username:{USERNAME} password:wrong phone:12501238585 sms:Hello"),
        "5.7.8 505 USER NOT FOUND OR WRONG PASSWORD"),
    "uppercase keyword": (
        mail(f"{FIELDS} SMS:Hello"),
        "5.6.0 511 INVALID TXT (keywords are lowercase: SMS: should be sms:)"),
    "uppercase field": (
        mail(f"USERNAME:{USERNAME} password:{PASSWORD} phone:12501238585 sms:Hello"),
        "5.7.8 510 INVALID USERNAME (keywords are lowercase: USERNAME: should be username:)"),
    "newline in the message": (
        mail(f"{FIELDS} sms:Hello Adam, this is\na test, please ignore."),
        "5.6.0 511 INVALID TXT (the sms: text goes on in line 2 (after line 1); the message must be written"
        " in one line)"),
    "missing phone": (
        mail(f"username:{USERNAME} password:{PASSWORD} sms:Hello"),
        "5.6.0 513 INVALID PIN (no phone number given)"),
    "two messages": (
        mail(f"{FIELDS} sms:Hello\ntts:Hello"),
        "5.6.0 511 INVALID TXT (two messages in one mail (sms: and tts:); send one per mail)"),
    "html only": (
        mail(f"<html><body><p>{FIELDS} sms:Hello</p></body></html>", subtype="html"),
        "5.6.1 500 ERROR: HTML MAIL NOT ACCEPTED, SEND TEXT (the mail has only an HTML body; send it as"
        " plain text)"),
    "undeclared 8-bit charset": (
        raw(f"{FIELDS} sms:Caf\u00e9".encode("latin-1"), "text/plain"),
        "5.6.1 500 ERROR: MAIL CHARSET NOT READABLE (8-bit text without a declared charset; declare one,"
        " e.g. charset=UTF-8)"),
    "latin-1 declared as utf-8": (
        raw(f"{FIELDS} sms:Caf\u00e9".encode("latin-1"), "text/plain; charset=utf-8"),
        "5.6.1 500 ERROR: MAIL CHARSET NOT READABLE (the text is not valid utf-8: 'utf-8' codec can't decode"
        " byte 0xe9 in position"),
    "unknown charset": (
        raw(f"{FIELDS} sms:Caf\u00e9".encode("latin-1"), "text/plain; charset=x-martian"),
        "5.6.1 500 ERROR: MAIL CHARSET NOT READABLE (unknown charset 'x-martian')"),
    "stray text": (
        mail(f"Hi,\n{FIELDS} sms:Hello"),
        "5.6.0 500 ERROR: MAIL NOT UNDERSTOOD (line 1: 'Hi,' is not a keyword field)"),
    "bad repeat": (
        mail(f"{FIELDS} repeat:99 tts:Hello"),
        "5.6.0 500 ERROR: INVALID REPEAT (repeat must be 0..9, not '99')"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_mail_gets_its_reply(running: Running, store: Store, case: str) -> None:
    data, expected = CASES[case]
    code, text = running.send(data)
    assert code == 550, (code, text)
    assert text.startswith(expected), text
    assert messages(store) == []


def test_credentials_are_checked_before_the_other_fields(running: Running, store: Store) -> None:
    code, text = running.send(mail(f"username:{USERNAME} password:wrong sms:Hello"))  # and no phone
    assert (code, text) == (550, "5.7.8 505 USER NOT FOUND OR WRONG PASSWORD")


def test_non_utf8_declared_charset_is_decoded(running: Running, store: Store) -> None:
    for charset in ("iso-8859-1", "windows-1252"):
        code, text = running.send(mail(f"{FIELDS} sms:Caf\u00e9 \u00e0 9\u20ac" if charset == "windows-1252"
                                       else f"{FIELDS} sms:Caf\u00e9 \u00e0 9", charset))
        assert code == 250, text
    assert [m.body for m in messages(store)] == ["Caf\u00e9 \u00e0 9", "Caf\u00e9 \u00e0 9\u20ac"]


def test_base64_mail_is_accepted(running: Running, store: Store) -> None:
    body = base64.encodebytes(f"{FIELDS} sms:Hello \u00fcber".encode()).replace(b"\n", b"\r\n")
    data = raw(body, "text/plain; charset=utf-8").replace(
        b"\r\n\r\n", b"\r\nContent-Transfer-Encoding: base64\r\n\r\n", 1)
    code, text = running.send(data)
    assert code == 250, text
    assert [m.body for m in messages(store)] == ["Hello \u00fcber"]


def test_twenty_megabytes_are_answered_552(running: Running, store: Store) -> None:
    line = base64.b64encode(bytes(57)) + b"\r\n"  # 78 bytes a line, as a base64 attachment would be
    big = raw(line * (20 * 1024 * 1024 // len(line)), "application/octet-stream")
    assert len(big) > 20 * 1000 * 1000
    code, text = running.send(big)  # MAIL FROM without SIZE: refused at the end of DATA
    assert code == 552, (code, text)
    assert messages(store) == []


def test_size_declared_by_smtplib_is_refused_at_mail_from(running: Running) -> None:
    import smtplib

    big = b"x" * (2 * 1024 * 1024)
    with smtplib.SMTP("127.0.0.1", running.port, timeout=30) as client, pytest.raises(
        smtplib.SMTPSenderRefused
    ) as caught:
        client.sendmail(USERNAME, ["gateway@localhost"], big)
    assert caught.value.smtp_code == 552
