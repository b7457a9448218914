"""Every seed route answers its documented body, by GET and POST (urlencoded, multipart; JSON for
matrix_vtts), as text and as `.json`, and stores what the worker needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.core.service import Gateway
from store import blobs, queue
from store.db import Database
from store.models import Message
from tests.integration.api.conftest import (
    DNC_PHONE,
    FIXED_FR,
    STAMP,
    account,
    blocks,
    legacy_json,
    one,
)
from tests.integration.fetch.server import MP3, WAV, Server

SAMPLE_WAV = Path(__file__).resolve().parents[3] / "samples" / "prompts" / "short.wav"


def stored(db: Database, message_id: str) -> Message:
    with db.read() as s:
        message = queue.get_message(s, message_id)
        s.expunge(message)
        return message


def test_matrix_tts_post_form_queues_one_message_with_its_settings(client: TestClient, db: Database) -> None:
    fields = account(
        phone="12506063167",
        txt="Adam, web server is down",
        repeat="1",
        gender="male",
        language="us",
        response="0",
    )
    answer = client.post("/matrix_tts", data=fields)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    body = one(answer.text)
    assert list(body) == ["ID", "STATUSCODE", "STATUSTXT", "TIMESTAMP"]
    assert body["STATUSCODE"] == "200" and body["STATUSTXT"] == "OK" and body["TIMESTAMP"] == str(STAMP)
    message = stored(db, body["ID"])
    assert (message.kind, message.phone, message.status_code, message.status_text) == (
        "tts",
        "+12506063167",
        100,
        "Queued",
    )
    assert message.settings == {
        "text": "Adam, web server is down",
        "language": "us",
        "gender": "male",
        "repeat": 1,
        "response": False,
    }
    assert message.reserved == 75_000  # five minutes at 0.015


def test_matrix_tts_json_variant_and_get(client: TestClient) -> None:
    answer = client.get("/matrix_tts.json", params=account(phone="12506063167", txt="Hello"))
    body = legacy_json(answer.text)
    assert answer.headers["content-type"].startswith("application/json")
    assert list(body) == ["ID", "STATUSCODE", "STATUSTXT", "TIMESTAMP"]
    assert body["STATUSCODE"] == 200 and body["TIMESTAMP"] == STAMP and len(body["ID"]) == 32


def test_several_recipients_one_block_each_and_do_not_call_goes_on(client: TestClient, db: Database) -> None:
    phones = f"12506063167,{DNC_PHONE},+1 250 606 3167"
    answer = client.post("/matrix", data=account(phone=phones, txt="This is a test, pls ignore"))
    first, second = blocks(answer.text)
    assert list(first) == ["ID", "PHONE", "STATUSCODE", "STATUSTXT", "TIMESTAMP"]
    assert (first["PHONE"], first["STATUSCODE"]) == ("+12506063167", "200")
    assert (second["PHONE"], second["STATUSCODE"], second["STATUSTXT"]) == (
        DNC_PHONE,
        "502",
        "PIN IN DO NOT CALL DATABASE",
    )
    refused = stored(db, second["ID"])
    assert refused.status_code == 502 and refused.finished_at is not None and refused.reserved == 0
    as_json = legacy_json(client.post("/matrix.json", data=account(phone=phones, txt="x")).text)
    assert [m["STATUSCODE"] for m in as_json["MESSAGES"]] == [200, 502]
    assert (as_json["STATUSCODE"], as_json["STATUSTXT"]) == (200, "OK")


def test_matrix_php_style_get_and_group(client: TestClient, db: Database) -> None:
    single = one(client.get("/matrix", params=account(phone="12506063167", txt="PHP")).text)
    message = stored(db, single["ID"])
    assert (message.kind, message.body, message.reserved, message.settings) == (
        "sms",
        "PHP",
        7500,
        {"tts_fallback": False},
    )
    group = blocks(client.post("/matrix", data=account(group="Test_Group", txt="to the group")).text)
    assert sorted(b["PHONE"] for b in group) == ["+12506058145", "+12506063167"]


def test_matrix_tts_fallback_turns_a_fixed_line_into_a_tts_call(client: TestClient, db: Database) -> None:
    answer = client.post(
        "/matrix", data=account(phone=f"12506063167,{FIXED_FR}", txt="Call me", tts="1", callerid="Shop")
    )
    sms, call = (stored(db, b["ID"]) for b in blocks(answer.text))
    assert (sms.kind, sms.callerid, sms.settings["tts_fallback"]) == ("sms", "Shop", True)
    assert (call.kind, call.phone, call.callerid, call.settings["text"]) == ("tts", FIXED_FR, "", "Call me")
    assert call.rate == 25_000  # the tts rate of prefix 33


def test_long_sms_reserves_per_part(client: TestClient, db: Database) -> None:
    body = one(client.post("/matrix", data=account(phone="12506063167", txt="a" * 161)).text)
    assert stored(db, body["ID"]).reserved == 2 * 7500


def test_matrix_voice_multipart_keeps_the_upload_as_a_blob(client: TestClient, db: Database) -> None:
    audio = SAMPLE_WAV.read_bytes()
    answer = client.post(
        "/matrix_voice",
        data=account(phone="12502771720", response="1", callerid="16307791722"),
        files={"voicefile": ("november_sale.wav", audio, "audio/wav")},
    )
    message = stored(db, one(answer.text)["ID"])
    digest = blobs.sha256_hex(audio)
    assert message.kind == "voice" and message.prompt_blob == digest and message.callerid == "+16307791722"
    assert message.settings == {"blob": digest, "repeat": 0, "response": True}
    with db.read() as s:
        assert blobs.get_blob(s, digest) == audio


def test_matrix_voicew_fetches_now(client: TestClient, db: Database, audio_server: Server) -> None:
    url = audio_server.url("/tone.mp3")
    answer = client.post("/matrix_voicew.json", data=account(phone="12502771720,12506063167", voiceurl=url))
    body = legacy_json(answer.text)
    assert [m["STATUSCODE"] for m in body["MESSAGES"]] == [200, 200]
    assert audio_server.requests == ["/tone.mp3"]  # once for every recipient
    message = stored(db, body["MESSAGES"][0]["ID"])
    assert message.settings["blob"] == blobs.sha256_hex(MP3) and message.body == url


def test_matrix_vtts_json_body(client: TestClient, db: Database, audio_server: Server) -> None:
    document = account(
        phone="12502012503",
        language="es",
        gender="male",
        callerid="12501112233",
        response=0,
        msg=[audio_server.url("/tone.wav"), "Hola, esto es una prueba.", audio_server.url("/tone.wav")],
    )
    answer = client.post(
        "/matrix_vtts", content=json.dumps(document), headers={"content-type": "application/json"}
    )
    message = stored(db, one(answer.text)["ID"])
    digest = blobs.sha256_hex(WAV)
    assert message.kind == "vtts" and message.rate == 15_000
    assert message.settings == {
        "segments": [{"blob": digest}, {"text": "Hola, esto es una prueba."}, {"blob": digest}],
        "language": "es",
        "gender": "male",
        "repeat": 0,
        "response": False,
    }
    assert audio_server.requests == ["/tone.wav"]


def test_matrix_vtts_from_a_form_with_repeated_msg(client: TestClient) -> None:
    fields = [
        ("username", "user@hotmail.com"),
        ("password", "pass72727"),
        ("phone", "12502012503"),
        ("msg", "First part."),
        ("msg", "Second part."),
    ]
    assert (
        one(client.post("/matrix_vtts", data=dict(fields[:3]), params=fields[3:]).text)["STATUSCODE"] == "200"
    )


def test_matrix_status_text_and_json(client: TestClient, gateway: Gateway, db: Database) -> None:
    message_id = one(client.post("/matrix_tts", data=account(phone="12506063167", txt="Hi")).text)["ID"]
    status = one(client.post("/matrix_status", data=account(id=message_id.upper())).text)
    assert status == {
        "ID": message_id,
        "STATUSCODE": "100",
        "STATUSTXT": "Queued",
        "RESPONSE": "",
        "TIMESTAMP": str(STAMP),
        "TIMEZONE": "UTC",
    }
    with db.transaction() as s:
        (job,) = queue.claim(s, "w1", gateway.now(), 60)
        queue.complete_call(
            s,
            job.id,
            "w1",
            queue.CallRecord(
                200,
                "Voice call answered, duration 18 seconds. R = 1",
                answered=True,
                duration_s=18.2,
                response="1",
            ),
            gateway.now(),
        )
    body = legacy_json(client.get("/matrix_status.json", params=account(id=message_id)).text)
    assert body == {
        "ID": message_id,
        "STATUSCODE": 200,
        "STATUSTXT": "Voice call answered, duration 18 seconds. R = 1",
        "RESPONSE": "1",
        "TIMESTAMP": STAMP,
        "TIMEZONE": "UTC",
    }


def test_subuser_sees_its_own_and_owner_sees_the_subusers(client: TestClient) -> None:
    sub = account("sub@hotmail.com", phone="12506063167", txt="from the sub-user")
    message_id = one(client.post("/matrix_tts", data=sub).text)["ID"]
    for who in ("sub@hotmail.com", "user@hotmail.com"):
        assert (
            one(client.post("/matrix_status", data=account(who, id=message_id)).text)["STATUSCODE"] == "100"
        )


def test_balance_rounds_down_and_counts_reservations(client: TestClient) -> None:
    assert one(client.post("/balance", data=account()).text) == {"BALANCE": "10.0000", "CURRENCY": "USD"}
    client.post("/matrix", data=account(phone="12506063167", txt="x"))
    assert one(client.get("/balance", params=account()).text)["BALANCE"] == "9.9925"
    assert legacy_json(client.get("/balance.json", params=account()).text) == {
        "BALANCE": "9.9925",
        "CURRENCY": "USD",
    }


@pytest.mark.parametrize(
    ("kind", "rate"), [("", "0.0075"), ("sms", "0.0075"), ("voice", "0.0130"), ("tts", "0.0150")]
)
def test_sms_rate_needs_no_account(client: TestClient, kind: str, rate: str) -> None:
    fields = {"phone": "12506058145", **({"type": kind} if kind else {})}
    assert one(client.post("/sms_rate", data=fields).text) == {
        "PHONE": "+12506058145",
        "TYPE": kind or "sms",
        "RATE": rate,
        "CURRENCY": "USD",
    }


def test_carrier_text_and_json(client: TestClient) -> None:
    assert one(client.post("/carrier", data=account(phone="2506063167")).text) == {
        "PHONE": "+12506063167",
        "COUNTRY": "CA",
        "CARRIER": "",
        "LINETYPE": "fixed_line_or_mobile",
    }
    assert legacy_json(client.get("/carrier.json", params=account(phone="+33612345678")).text) == {
        "PHONE": "+33612345678",
        "COUNTRY": "FR",
        "CARRIER": "SFR",
        "LINETYPE": "mobile",
    }


def test_submission_wakes_the_worker(client: TestClient) -> None:
    wake = client.app.state.wake  # type: ignore[attr-defined]
    assert not wake.is_set()
    client.post("/matrix_tts", data=account(phone="12506063167", txt="Hi"))
    # the TestClient app was given its gateway, which has no wake function: the app's own event is unused
    assert not wake.is_set()


def test_app_built_from_settings_wakes_on_submission(tmp_path: Path, settings: object) -> None:
    from argon2 import PasswordHasher

    from api.core.settings import Settings
    from api.fronts.app import create_app
    from tests.integration.api.conftest import seed

    own = Settings(data_dir=tmp_path / "own")
    database = Database.open(f"sqlite:///{tmp_path / 'own' / 'ivrgate.db'}")
    database.upgrade()
    seed(database, PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    database.dispose()
    with TestClient(create_app(own)) as own_client:
        wake = own_client.app.state.wake  # type: ignore[attr-defined]
        assert (
            one(own_client.post("/matrix_tts", data=account(phone="12506063167", txt="x")).text)["STATUSCODE"]
            == "200"
        )
        assert wake.is_set()
        with database.read() as s:
            assert len(s.scalars(select(Message)).all()) == 1
