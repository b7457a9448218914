"""Every seed status code, caused by the input that should cause it: HTTP 200, the exact code and text,
and nothing written (the database is compared before and after each refusal)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from store import accounts, ledger
from store.db import Database
from tests.integration.api.conftest import (
    DNC_PHONE,
    INACTIVE,
    NOW,
    ORPHAN,
    OTHER,
    PASSWORD,
    STAMP,
    SUBUSER,
    account,
    counts,
    legacy_json,
    one,
)
from tests.integration.fetch.server import Server

TTS = {"phone": "12506063167", "txt": "Hello"}
E = "ERROR: "

CASES: list[tuple[str, str, dict[str, Any], int, str]] = [
    # 404: a sub-user whose account is gone
    ("404-orphan", "/matrix_tts", account(ORPHAN, **TTS), 404, "ACCOUNT OR USER DOES NOT EXIST"),
    # 500 family
    ("500-id-unknown", "/matrix_status", account(id="0" * 32), 500, E + "MESSAGE NOT FOUND"),
    (
        "500-id-malformed",
        "/matrix_status",
        account(id="x'; DROP TABLE messages;--"),
        500,
        E + "MESSAGE NOT FOUND",
    ),
    ("500-id-missing", "/matrix_status", account(), 500, E + "MESSAGE NOT FOUND"),
    ("500-callerid", "/matrix_tts", account(**TTS, callerid="123"), 500, E + "INVALID CALLERID"),
    ("500-callerid-voice-alpha", "/matrix_tts", account(**TTS, callerid="Shop"), 500, E + "INVALID CALLERID"),
    ("500-group", "/matrix", account(group="Nope", txt="x"), 500, E + "GROUP NOT FOUND"),
    ("500-repeat", "/matrix_tts", account(**TTS, repeat="10"), 500, E + "INVALID REPEAT"),
    ("500-response", "/matrix_tts", account(**TTS, response="2"), 500, E + "INVALID RESPONSE"),
    ("500-language", "/matrix_tts", account(**TTS, language="fr"), 500, E + "INVALID LANGUAGE"),
    ("500-gender", "/matrix_tts", account(**TTS, gender="robot"), 500, E + "INVALID GENDER"),
    ("500-tts", "/matrix", account(**TTS, tts="maybe"), 500, E + "INVALID TTS"),
    ("500-type", "/sms_rate", {"phone": "12506058145", "type": "mms"}, 500, E + "INVALID TYPE"),
    (
        "500-voiceurl-ftp",
        "/matrix_voicew",
        account(phone="12506063167", voiceurl="ftp://h/a.wav"),
        500,
        E + "VOICE URL REFUSED",
    ),
    # 502: the only recipient is on the do-not-call list (stored as its own message: see test_routes)
    # 503: see test_insufficient_balance
    # 505, 506
    (
        "505-password",
        "/matrix_tts",
        account(password="wrong", **TTS),
        505,
        "USER NOT FOUND OR WRONG PASSWORD",
    ),
    ("505-user", "/balance", account("nobody@hotmail.com"), 505, "USER NOT FOUND OR WRONG PASSWORD"),
    (
        "505-before-phone",
        "/matrix_tts",
        account(password="wrong", phone="123", txt="x"),
        505,
        "USER NOT FOUND OR WRONG PASSWORD",
    ),
    ("506-inactive", "/matrix_tts", account(INACTIVE, **TTS), 506, "ACCOUNT NOT ACTIVE"),
    # 510, 511, 512
    ("510-missing", "/matrix_tts", {"password": PASSWORD, **TTS}, 510, "INVALID USERNAME"),
    ("510-space", "/balance", account("user @hotmail.com"), 510, "INVALID USERNAME"),
    ("510-over-254", "/balance", account("u" * 250 + "@x.com"), 510, "INVALID USERNAME"),
    ("511-missing", "/matrix_tts", account(phone="12506063167"), 511, "INVALID TXT"),
    ("511-blank", "/matrix", account(phone="12506063167", txt="  \n "), 511, "INVALID TXT"),
    ("511-control", "/matrix", account(phone="12506063167", txt="a\x00b"), 511, "INVALID TXT"),
    ("511-too-long", "/matrix_tts", account(phone="12506063167", txt="a" * 2001), 511, "INVALID TXT"),
    ("512-missing", "/matrix_tts", {"username": "user@hotmail.com", **TTS}, 512, "INVALID PASSWORD"),
    ("512-too-long", "/balance", account(password="p" * 1025), 512, "INVALID PASSWORD"),
    # 513
    ("513-123", "/matrix_tts", account(phone="123", txt="x"), 513, "INVALID PIN"),
    ("513-letters", "/matrix", account(phone="12506063167abc", txt="x"), 513, "INVALID PIN"),
    ("513-one-bad", "/matrix", account(phone="12506063167,123", txt="x"), 513, "INVALID PIN"),
    ("513-missing", "/matrix", account(txt="x"), 513, "INVALID PIN"),
    ("513-too-many", "/matrix", account(phone=",".join(["12506063167"] * 1001), txt="x"), 513, "INVALID PIN"),
    ("513-two-carrier", "/carrier", account(phone="12506063167,12506058145"), 513, "INVALID PIN"),
    ("513-two-rate", "/sms_rate", {"phone": "12506063167,12506058145"}, 513, "INVALID PIN"),
    ("513-no-rate", "/matrix_tts", account(phone="+79161234567", txt="x"), 513, "INVALID PIN"),
    ("513-no-voice-rate", "/matrix_tts", account(phone="+447911123456", txt="x"), 513, "INVALID PIN"),
    (
        "513-one-unrated",
        "/matrix_tts",
        account(phone="12506063167,+79161234567", txt="x"),
        513,
        "INVALID PIN",
    ),
    # 514
    ("514-no-file", "/matrix_voice", account(phone="12506063167"), 514, "NO VOICE FILE PROVIDED"),
    ("514-no-url", "/matrix_voicew", account(phone="12506063167"), 514, "NO VOICE FILE PROVIDED"),
    # 520 (form variants; JSON bodies below)
    ("520-no-msg", "/matrix_vtts", account(phone="12506063167"), 520, "ERROR PARSING XML"),
]


@pytest.mark.parametrize(
    ("route", "fields", "code", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_status_code(
    client: TestClient, db: Database, route: str, fields: dict[str, Any], code: int, text: str
) -> None:
    before = counts(db)
    for method in ("POST", "GET"):
        answer = client.request(
            method, route, **({"data": fields} if method == "POST" else {"params": fields})
        )
        assert answer.status_code == 200
        assert one(answer.text) == {"STATUSCODE": str(code), "STATUSTXT": text, "TIMESTAMP": str(STAMP)}
    as_json = client.post(route.replace("/", "/", 1) + ".json", data=fields)
    assert legacy_json(as_json.text) == {"STATUSCODE": code, "STATUSTXT": text, "TIMESTAMP": STAMP}
    assert counts(db) == before


BAD_BODIES = [
    b"{bad",
    b"[1, 2]",
    b'"text"',
    b"",
    json.dumps(account(phone="12506063167", msg="a")).encode(),
    json.dumps(account(phone="12506063167", msg=[])).encode(),
    json.dumps(account(phone="12506063167", msg=["ok", 5])).encode(),
    b"[" * 100_000,
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_520_for_bodies_that_are_not_a_vtts_object(client: TestClient, db: Database, body: bytes) -> None:
    before = counts(db)
    answer = client.post("/matrix_vtts", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 200 and one(answer.text)["STATUSCODE"] == "520"
    assert counts(db) == before


def test_502_when_the_only_recipient_is_on_the_do_not_call_list(client: TestClient, db: Database) -> None:
    body = one(client.post("/matrix_tts", data=account(phone=DNC_PHONE, txt="x")).text)
    assert (body["STATUSCODE"], body["STATUSTXT"], len(body["ID"])) == (
        "502",
        "PIN IN DO NOT CALL DATABASE",
        32,
    )
    status = one(client.post("/matrix_status", data=account(id=body["ID"])).text)
    assert status["STATUSCODE"] == "502"


def test_503_insufficient_balance_writes_nothing(client: TestClient, db: Database, hasher: Any) -> None:
    with db.transaction() as s:
        poor = accounts.create_account(
            s, username="poor@hotmail.com", password=PASSWORD, now=NOW, hasher=hasher
        )
        ledger.top_up(s, poor.id, 100_000, NOW)  # 0.10: one TTS call reserves 0.075
    before = counts(db)
    answer = client.post(
        "/matrix_tts", data=account("poor@hotmail.com", phone="12506063167,12506058145", txt="x")
    )
    assert one(answer.text)["STATUSCODE"] == "503" and one(answer.text)["STATUSTXT"] == "INSUFFICIENT BALANCE"
    assert counts(db) == before
    assert (
        one(client.post("/matrix_tts", data=account("poor@hotmail.com", phone="12506063167", txt="x")).text)[
            "STATUSCODE"
        ]
        == "200"
    )


def test_subuser_spending_limit_is_503(client: TestClient, db: Database, hasher: Any) -> None:
    with db.transaction() as s:
        owner = accounts.find_account(s, "user@hotmail.com")
        assert owner is not None
        accounts.create_account(
            s,
            username="capped@hotmail.com",
            password=PASSWORD,
            now=NOW,
            hasher=hasher,
            role=accounts.Role.SUBUSER,
            parent=owner,
            spending_limit=10_000,
        )
    answer = client.post("/matrix_tts", data=account("capped@hotmail.com", **TTS))
    assert one(answer.text)["STATUSCODE"] == "503"


def test_foreign_message_is_not_found(client: TestClient) -> None:
    theirs = one(client.post("/matrix_tts", data=account(OTHER, **TTS)).text)["ID"]
    mine = one(client.post("/matrix_tts", data=account(**TTS)).text)["ID"]
    for who, message_id in ((SUBUSER, theirs), (SUBUSER, mine), ("user@hotmail.com", theirs)):
        body = one(client.post("/matrix_status", data=account(who, id=message_id)).text)
        assert (body["STATUSCODE"], body["STATUSTXT"]) == ("500", "ERROR: MESSAGE NOT FOUND")


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/tone.wav?x", None),
        ("/error", "ERROR: VOICE URL NOT FOUND"),
        ("/page.mp3", "ERROR: VOICE URL IS NOT AUDIO"),
        ("/empty.wav", "ERROR: VOICE URL IS NOT AUDIO"),
    ],
)
def test_voice_url_failures_are_immediate(
    client: TestClient, db: Database, audio_server: Server, path: str, text: str | None
) -> None:
    before = counts(db)
    body = one(
        client.post("/matrix_voicew", data=account(phone="12506063167", voiceurl=audio_server.url(path))).text
    )
    if text is None:
        assert body["STATUSCODE"] == "200"
        return
    assert (body["STATUSCODE"], body["STATUSTXT"]) == ("500", text)
    assert counts(db) == before


def test_private_voice_url_refused_by_default(db: Database, world: Any, tmp_path: Any) -> None:
    from api.core.service import Gateway
    from api.core.settings import Settings
    from api.fronts.app import create_app

    settings = Settings(data_dir=tmp_path)
    with TestClient(create_app(settings, Gateway(settings, db, now=lambda: NOW))) as strict:
        body = one(
            strict.post(
                "/matrix_voicew", data=account(phone="12506063167", voiceurl="http://127.0.0.1:9/a.wav")
            ).text
        )
    assert (body["STATUSCODE"], body["STATUSTXT"]) == ("500", "ERROR: VOICE URL REFUSED")
