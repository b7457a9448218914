"""Hostile and broken input: SQL metacharacters and unicode in every field, oversized and non-audio
uploads, and database failures injected under the gateway (504, 507, 508). Always the documented code,
never an HTTP 500 with a traceback, nothing half-written."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from api.core.service import Gateway
from api.core.settings import Settings
from api.fronts.app import create_app
from store.db import Database
from tests.integration.api.conftest import NOW, account, counts, one

HOSTILE = [
    "' OR '1'='1",
    "x'); DROP TABLE messages;--",
    '"; DELETE FROM ledger; --',
    "%' --",
    "\\",
    "ü漢字🎉",
    "\u202e\u200b",
    "a\u2028b",
]
ROUTES = {
    "/matrix": account(phone="12506063167", txt="hi", callerid="Shop", tts="0", group=""),
    "/matrix_tts": account(
        phone="12506063167",
        txt="hi",
        repeat="0",
        gender="male",
        language="us",
        response="1",
        callerid="12501231233",
    ),
    "/matrix_voicew": account(phone="12506063167", voiceurl="http://127.0.0.1:9/a.wav"),
    "/matrix_status": account(id="0" * 32),
    "/carrier": account(phone="12506063167"),
    "/balance": account(),
    "/sms_rate": {"phone": "12506058145", "type": "sms"},
}
EXPECTED_ANY = {"200", "500", "505", "510", "511", "512", "513", "514", "520"}


@pytest.mark.parametrize("route", list(ROUTES))
def test_hostile_values_in_every_field(client: TestClient, db: Database, route: str) -> None:
    fields = ROUTES[route]
    for name in fields:
        for value in HOSTILE:
            before = counts(db)
            answer = client.post(route, data={**fields, name: value})
            assert answer.status_code == 200, (name, value, answer.text)
            body = one(answer.text)  # the line format survives whatever came in
            assert body["STATUSCODE"] in EXPECTED_ANY, (name, value, body)
            if body["STATUSCODE"] != "200":
                assert counts(db) == before, (name, value)


def test_unicode_text_is_stored_as_sent(client: TestClient, db: Database) -> None:
    text = "Olá ü漢字🎉 ' OR 1=1; --"
    body = one(client.post("/matrix", data=account(phone="12506063167", txt=text)).text)
    with db.read() as s:
        from store import queue

        assert queue.get_message(s, body["ID"]).body == text


def test_non_audio_upload_is_refused(client: TestClient, db: Database) -> None:
    before = counts(db)
    for data in (b"hello, not audio at all", b"RIFF\x00\x00\x00\x00WAVEjunk", b"%PDF-1.4 " * 100):
        answer = client.post(
            "/matrix_voice",
            data=account(phone="12506063167"),
            files={"voicefile": ("a.wav", data, "audio/wav")},
        )
        body = one(answer.text)
        assert body["STATUSCODE"] == "500" and body["STATUSTXT"] in (
            "ERROR: UNSUPPORTED AUDIO FORMAT",
            "ERROR: CORRUPT AUDIO FILE",
        )
    empty = client.post(
        "/matrix_voice", data=account(phone="12506063167"), files={"voicefile": ("a.wav", b"")}
    )
    assert one(empty.text)["STATUSCODE"] == "514"
    assert counts(db) == before


def test_declared_50_mb_upload_is_refused_before_reading(client: TestClient, db: Database) -> None:
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(50):
            sent += 1
            yield b"\0" * (1024 * 1024)

    headers = {"content-type": "multipart/form-data; boundary=b", "content-length": str(50 * 1024 * 1024)}
    answer = client.post("/matrix_voice", content=body(), headers=headers)
    assert answer.status_code == 200
    assert one(answer.text)["STATUSTXT"] == "ERROR: VOICE FILE TOO LARGE"
    assert sent <= 1


def test_chunked_50_mb_upload_stops_at_the_limit(client: TestClient, db: Database) -> None:
    before = counts(db)
    sent = 0
    head = (
        b'--b\r\nContent-Disposition: form-data; name="username"\r\n\r\nuser@hotmail.com\r\n'
        b'--b\r\nContent-Disposition: form-data; name="voicefile"; filename="big.wav"\r\n\r\n'
    )

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield head
        for _ in range(50):
            sent += 1
            yield b"\0" * (1024 * 1024)

    answer = client.post(
        "/matrix_voice", content=body(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert answer.status_code == 200
    assert one(answer.text)["STATUSTXT"] == "ERROR: VOICE FILE TOO LARGE"
    # (TestClient drains the rest of the body itself; test_server.py shows uvicorn does not need it)
    assert counts(db) == before


def test_other_routes_take_small_bodies_only(client: TestClient) -> None:
    answer = client.post(
        "/matrix",
        content=b"txt=" + b"a" * (2 * 1024 * 1024),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert one(answer.text) == {
        "STATUSCODE": "500",
        "STATUSTXT": "ERROR: REQUEST TOO LARGE",
        "TIMESTAMP": str(int(NOW.timestamp())),
    }


# --- database failures ---------------------------------------------------------------------------------


def fail_statements(database: Database, prefix: str, error: Exception) -> Any:
    """Make every statement starting with `prefix` fail in the driver, as a broken disk or server would."""

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(prefix):
            raise error

    event.listen(database.engine, "before_cursor_execute", before)
    return before


@pytest.fixture
def sqlite_only(db: Database) -> Database:
    if db.dialect != "sqlite":
        pytest.skip("driver errors are injected through sqlite3's exception classes")
    return db


@pytest.mark.parametrize(
    ("prefix", "error", "route", "code"),
    [
        ("INSERT", sqlite3.OperationalError("disk I/O error"), "/matrix_tts", "507"),
        ("INSERT", sqlite3.IntegrityError("constraint failed"), "/matrix", "507"),
        ("INSERT", sqlite3.OperationalError("database is locked"), "/matrix_tts", "508"),
        ("SELECT", sqlite3.OperationalError("disk I/O error"), "/balance", "504"),
        ("SELECT", sqlite3.DatabaseError("database disk image is malformed"), "/matrix_status", "504"),
        ("SELECT", sqlite3.OperationalError("unable to open database file"), "/balance", "508"),
    ],
)
def test_database_failures(
    client: TestClient, sqlite_only: Database, prefix: str, error: Exception, route: str, code: str
) -> None:
    fields = account(phone="12506063167", txt="x", id="0" * 32)
    before = counts(sqlite_only)
    listener = fail_statements(sqlite_only, prefix, error)
    try:
        answer = client.post(route, data=fields)
    finally:
        event.remove(sqlite_only.engine, "before_cursor_execute", listener)
    assert answer.status_code == 200
    assert one(answer.text)["STATUSCODE"] == code
    assert one(answer.text)["STATUSTXT"] == "DATABASE ERROR"
    assert counts(sqlite_only) == before


def test_unreachable_database_is_508(settings: Settings) -> None:
    from tests.integration.store.postgres import free_tcp_port

    database = Database.open(f"postgresql://nobody@127.0.0.1:{free_tcp_port()}/none")
    with TestClient(create_app(settings, Gateway(settings, database, now=lambda: NOW))) as down:
        body = one(down.post("/balance", data=account()).text)
        rate = one(down.post("/sms_rate", data={"phone": "12506058145"}).text)
    assert (body["STATUSCODE"], body["STATUSTXT"]) == ("508", "DATABASE ERROR")
    assert rate["STATUSCODE"] == "508"
    database.dispose()


def test_a_bug_is_http_500_without_a_traceback(
    client: TestClient, gateway: Gateway, monkeypatch: Any
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(gateway, "balance", broken)
    answer = client.post("/balance", data=account())
    assert answer.status_code == 500
    assert (
        one(answer.text)["STATUSCODE"] == "500"
        and "Traceback" not in answer.text
        and "bug" not in answer.text
    )
