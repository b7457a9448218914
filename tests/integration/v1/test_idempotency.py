"""Idempotency keys on both databases: v1's `Idempotency-Key` header and the legacy `idempotency_key`
field. A retry with the same key and request gets the first answer and writes nothing; another request
with the key is 409; keys are per login and expire; a refused submission keeps no key; concurrent
duplicates (threads, one group-commit batch, two gateways) write once."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from api.core.idempotency import IdempotencyConflict, Replayed
from api.core.jobs import Claim
from api.core.service import Gateway
from api.core.settings import Settings
from store.models import LedgerEntry, Message
from tests.integration.fetch.server import serve
from tests.integration.sms_settings import smsc_elsewhere
from tests.integration.v1.conftest import OTHER_PHONE, PHONE, Api

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)]

SMS = {"type": "sms", "to": [PHONE, OTHER_PHONE], "text": "disk full"}


def _count(api: Api, model: type[Any] = Message) -> int:
    with api.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _post(api: Api, key: str, body: dict[str, Any] | None = None,
          headers: dict[str, str] | None = None) -> Any:
    return api.client.post("/v1/messages", json=body or SMS,
                           headers={**(headers or api.owner.headers), "Idempotency-Key": key})


def test_a_retry_gets_the_first_answer_and_writes_nothing(api: Api) -> None:
    first = _post(api, "job-1")
    assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
    messages, entries = _count(api), _count(api, LedgerEntry)
    again = _post(api, "job-1")
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert (_count(api), _count(api, LedgerEntry)) == (messages, entries) == (2, 4)  # 2 top-ups, 2 holds


def test_the_same_key_with_another_request_is_409(api: Api) -> None:
    assert _post(api, "job-2").status_code == 202
    other = _post(api, "job-2", {**SMS, "text": "disk fuller"})
    assert other.status_code == 409 and other.json()["status"] == "ERROR: IDEMPOTENCY KEY REUSED"
    assert _count(api) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_bad_keys_are_422(api: Api, key: str) -> None:
    r = _post(api, key)
    assert r.status_code == 422 and r.json()["status"] == "ERROR: INVALID IDEMPOTENCY_KEY", r.text
    assert _count(api) == 0


def test_keys_are_per_login_and_expire(api: Api) -> None:
    mine = _post(api, "shared").json()
    theirs = _post(api, "shared", headers=api.other.headers).json()
    assert mine != theirs and _count(api) == 4
    api.clock.now += dt.timedelta(hours=24, seconds=1)
    later = _post(api, "shared")
    assert later.status_code == 202 and "Idempotent-Replayed" not in later.headers
    assert later.json() != mine and _count(api) == 6


def test_a_refused_submission_keeps_no_key(api: Api) -> None:
    refused = _post(api, "job-3", {**SMS, "to": None, "group": "nobody"})
    assert refused.status_code == 404, refused.text
    api.client.post("/v1/groups", headers=api.owner.headers,
                    json={"name": "nobody", "members": [{"phone": PHONE}]})
    done = _post(api, "job-3", {**SMS, "to": None, "group": "nobody"})
    assert done.status_code == 202 and "Idempotent-Replayed" not in done.headers


def test_an_upload_retry_is_replayed(api: Api) -> None:
    wav = (Path(__file__).resolve().parents[3] / "samples" / "prompts" / "short.wav").read_bytes()

    def upload() -> Any:
        return api.client.post("/v1/messages/voice", headers={**api.owner.headers, "Idempotency-Key": "up-1"},
                               files={"file": ("a.wav", wav, "audio/wav")}, data={"to": PHONE})

    first, again = upload(), upload()
    assert first.status_code == 202 and again.json() == first.json() and again.headers["Idempotent-Replayed"]
    assert _count(api) == 1


def test_concurrent_duplicates_write_once(api: Api) -> None:
    start = threading.Barrier(6)

    def send(_: int) -> Any:
        start.wait()
        return _post(api, "racing")

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, range(6)))
    assert {a.status_code for a in answers} == {202}
    assert len({str(a.json()) for a in answers}) == 1
    assert _count(api) == 2 and _count(api, LedgerEntry) == 4  # two top-ups, one hold per recipient


def test_one_batch_and_two_gateways_write_once(api: Api) -> None:
    caller = api.gateway.login(api.owner.username, api.owner.password)
    claim = Claim("batch", "h" * 64)

    def job(gateway: Gateway, text: str = "hello", claimed: Claim = claim) -> Any:
        built = gateway.sms_job(caller, phones=PHONE, group=None, text=text)
        built.idempotency = claimed
        return built

    first, repeat, other = api.gateway.write_jobs([job(api.gateway), job(api.gateway),
                                                   job(api.gateway, "x", Claim("batch", "g" * 64))])
    assert isinstance(first, list) and isinstance(repeat, Replayed) and repeat == first
    assert isinstance(other, IdempotencyConflict)
    second_process = Gateway(smsc_elsewhere(Settings(data_dir=api.data_dir)), api.db, now=api.clock)
    try:
        async def both() -> list[Any]:
            return list(await asyncio.gather(second_process.submit_async(job(second_process)),
                                             api.gateway.submit_async(job(api.gateway))))

        assert asyncio.run(both()) == [first, first]
    finally:
        second_process.close()
    assert _count(api) == 1


def test_legacy_idempotency_key(api: Api) -> None:
    form = {"username": api.owner.username, "password": api.owner.password, "phone": "2506063167",
            "txt": "hello", "idempotency_key": "legacy-1"}
    first = api.client.post("/matrix_tts.json", data=form).json()
    again = api.client.post("/matrix_tts.json", data=form).json()
    assert first["STATUSCODE"] == 200 and again["ID"] == first["ID"]
    other = api.client.post("/matrix_tts.json", data={**form, "txt": "bye"}).json()
    assert (other["STATUSCODE"], other["STATUSTXT"]) == (500, "ERROR: IDEMPOTENCY KEY REUSED")
    start = threading.Barrier(4)

    def send(_: int) -> Any:
        start.wait()
        return api.client.post("/matrix_tts.json", data={**form, "idempotency_key": "legacy-2"}).json()["ID"]

    with ThreadPoolExecutor(4) as pool:
        assert len(set(pool.map(send, range(4)))) == 1
    assert _count(api) == 2


def test_a_legacy_retry_is_answered_before_its_voice_url_is_fetched(api: Api) -> None:
    """The retry of a keyed matrix_voicew gets the first answer without fetching its URL again (so a URL gone
    by then does not matter): the kept answer is read before the job is built (docs/api-legacy.md,
    "Retries")."""
    with serve() as audio:
        form = {"username": api.owner.username, "password": api.owner.password, "phone": "2506063167",
                "voiceurl": audio.url("/tone.mp3"), "idempotency_key": "voicew-1"}
        first = api.client.post("/matrix_voicew.json", data=form).json()
        again = api.client.post("/matrix_voicew.json", data=form).json()
        assert audio.requests == ["/tone.mp3"]
    assert first["STATUSCODE"] == 200 and again == first
    assert _count(api) == 1
    wrong = api.client.post("/matrix_voicew.json", data={**form, "password": "not it"}).json()
    assert wrong["STATUSCODE"] == 505  # the credentials still answer before the kept answer
