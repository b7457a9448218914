"""/v1/messages through the real app: every submission type, listing with filters and pages, one message
with its timeline, cancelling, and what each refusal answers."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest

from store import lists
from tests.integration.v1.conftest import BALANCE, OTHER_PHONE, PHONE, Api

pytestmark = pytest.mark.integration

WAV = Path(__file__).resolve().parents[3] / "samples" / "prompts" / "short.wav"


def submit(api: Api, body: dict[str, object], headers: dict[str, str] | None = None) -> dict[str, object]:
    r = api.client.post("/v1/messages", json=body, headers=headers or api.owner.headers)
    assert r.status_code == 202, r.text
    return r.json()  # type: ignore[no-any-return]


def ids(answer: dict[str, object]) -> list[str]:
    return [m["id"] for m in answer["messages"]]  # type: ignore[index, attr-defined]


@pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
def test_tts_submission_reserves_and_reads_back_with_its_timeline(api: Api) -> None:
    answer = submit(
        api,
        {
            "type": "tts",
            "to": [PHONE, "250-123-1233"],
            "text": "Adam, web server is down",
            "language": "es",
            "gender": "male",
            "repeat": 2,
            "response": True,
        },
    )
    assert [(m["phone"], m["code"], m["status"]) for m in answer["messages"]] == [  # type: ignore[attr-defined]
        (PHONE, 100, "Queued"),
        (OTHER_PHONE, 100, "Queued"),
    ]
    r = api.client.get(f"/v1/messages/{ids(answer)[0]}", headers=api.owner.headers)
    assert r.status_code == 200
    detail = r.json()
    assert detail["type"] == "tts" and detail["text"] == "Adam, web server is down"
    assert detail["settings"]["language"] == "es" and detail["settings"]["repeat"] == 2
    assert [e["kind"] for e in detail["events"]] == ["queued"]
    balance = api.client.get("/v1/balance", headers=api.owner.headers).json()
    assert balance["balance_micros"] == BALANCE - 2 * detail["reserved_micros"] < BALANCE


def test_sms_and_vtts_submissions(api: Api) -> None:
    sms = submit(api, {"type": "sms", "to": [PHONE], "text": "hello", "callerid": "ACME"})
    vtts = submit(api, {"type": "vtts", "to": [PHONE], "segments": ["Hello", {"text": "world"}]})
    with api.db.read() as session:
        from store.models import Message

        sms_row = session.get(Message, ids(sms)[0])
        vtts_row = session.get(Message, ids(vtts)[0])
        assert sms_row is not None and sms_row.kind == "sms" and sms_row.callerid == "ACME"
        assert vtts_row is not None and vtts_row.settings["segments"] == [
            {"text": "Hello"},
            {"text": "world"},
        ]


def test_voice_by_base64_by_multipart_and_by_url(api: Api, wav_server: str) -> None:
    audio = WAV.read_bytes()
    by_json = submit(
        api,
        {
            "type": "voice",
            "to": [PHONE],
            "audio_base64": base64.b64encode(audio).decode(),
            "filename": "short.wav",
        },
    )
    r = api.client.post(
        "/v1/messages/voice",
        headers=api.owner.headers,
        data={"to": f"{PHONE},{OTHER_PHONE}"},
        files={"file": ("short.wav", audio, "audio/wav")},
    )
    assert r.status_code == 202, r.text
    assert len(r.json()["messages"]) == 2
    by_url = submit(api, {"type": "voice", "to": [PHONE], "audio_url": wav_server})
    details = [
        api.client.get(f"/v1/messages/{i}", headers=api.owner.headers).json()
        for i in ids(by_json) + ids(by_url)
    ]
    assert details[0]["settings"]["blob"] == details[1]["settings"]["blob"]


@pytest.mark.parametrize(
    ("body", "http", "code"),
    [
        ({"type": "tts", "to": [PHONE], "text": ""}, 422, 511),
        ({"type": "tts", "to": ["12"], "text": "hi"}, 422, 513),
        ({"type": "sms", "text": "hi"}, 422, 513),
        ({"type": "voice", "to": [PHONE]}, 422, 514),
        ({"type": "voice", "to": [PHONE], "audio_base64": "not base64!"}, 422, 500),
        ({"type": "voice", "to": [PHONE], "audio_base64": base64.b64encode(b"x" * 100).decode()}, 422, 500),
        ({"type": "fax", "to": [PHONE], "text": "hi"}, 422, 500),
        ({"type": "tts", "to": [PHONE], "text": "hi", "language": "fr"}, 422, 500),
        ({"type": "tts", "to": [PHONE], "text": "hi", "group": "nobody"}, 404, 500),
        ({"type": "tts", "to": [PHONE], "text": "hi", "callback_url": "ftp://x"}, 422, 500),
    ],
)
def test_bad_submissions_answer_the_seed_code(
    api: Api, body: dict[str, object], http: int, code: int
) -> None:
    r = api.client.post("/v1/messages", json=body, headers=api.owner.headers)
    assert (r.status_code, r.json()["code"]) == (http, code), r.text
    assert set(r.json()) == {"code", "status", "detail"}
    assert api.client.get("/v1/messages", headers=api.owner.headers).json()["items"] == []


def test_broken_json_is_520(api: Api) -> None:
    r = api.client.post(
        "/v1/messages",
        content=b'{"type": "tts", ',
        headers={**api.owner.headers, "Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()["code"], r.json()["status"]) == (422, 520, "ERROR PARSING XML")


def test_insufficient_balance_is_402_and_writes_nothing(api: Api) -> None:
    with api.db.transaction() as session:
        from store.models import Account

        sub = session.get(Account, api.subuser.account_id)
        assert sub is not None
        sub.spending_limit = 10
    r = api.client.post(
        "/v1/messages", json={"type": "tts", "to": [PHONE], "text": "hi"}, headers=api.subuser.headers
    )
    assert (r.status_code, r.json()["code"]) == (402, 503)
    assert api.client.get("/v1/messages", headers=api.owner.headers).json()["items"] == []


def test_do_not_call_recipients_are_their_own_502_message(api: Api) -> None:
    with api.db.transaction() as session:
        lists.add_do_not_call(session, OTHER_PHONE, api.clock(), api.owner.account_id)
    answer = submit(api, {"type": "sms", "to": [PHONE, OTHER_PHONE], "text": "hi"})
    assert [m["code"] for m in answer["messages"]] == [100, 502]  # type: ignore[attr-defined]


def test_group_submission_reaches_its_members(api: Api) -> None:
    r = api.client.post(
        "/v1/groups",
        headers=api.owner.headers,
        json={"name": "oncall", "members": [{"phone": PHONE}, {"phone": OTHER_PHONE}]},
    )
    assert r.status_code == 201
    answer = submit(api, {"type": "sms", "group": "oncall", "text": "hi"}, api.subuser.headers)
    assert sorted(m["phone"] for m in answer["messages"]) == [OTHER_PHONE, PHONE]  # type: ignore[attr-defined]


def test_listing_filters_and_pages(api: Api) -> None:
    for n in range(5):
        submit(api, {"type": "sms", "to": [PHONE], "text": f"owner {n}"})
    submit(api, {"type": "tts", "to": [OTHER_PHONE], "text": "by the sub-user"}, api.subuser.headers)
    submit(api, {"type": "sms", "to": [PHONE], "text": "someone else"}, api.other.headers)
    get = lambda login, **params: api.client.get("/v1/messages", params=params, headers=login.headers)  # noqa: E731
    seen, cursor = [], None
    while True:
        page = get(api.owner, limit=2, **({"cursor": cursor} if cursor else {})).json()
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 6
    assert [m["type"] for m in get(api.owner, type="tts").json()["items"]] == ["tts"]
    assert len(get(api.owner, phone="(250) 606-3167").json()["items"]) == 5
    assert len(get(api.owner, user_id=api.subuser.account_id).json()["items"]) == 1
    assert len(get(api.subuser).json()["items"]) == 1
    assert len(get(api.other).json()["items"]) == 1
    assert len(get(api.admin).json()["items"]) == 7
    assert len(get(api.owner, outcome="pending", status=100).json()["items"]) == 6
    assert get(api.owner, outcome="failure").json()["items"] == []
    later = (api.clock.now + dt.timedelta(hours=1)).isoformat()
    assert get(api.owner, since=later).json()["items"] == []
    assert len(get(api.owner, until=later).json()["items"]) == 6
    bad = get(api.owner, cursor="garbage")
    assert (bad.status_code, bad.json()["status"]) == (422, "ERROR: INVALID CURSOR")


def test_foreign_and_unknown_messages_are_404(api: Api) -> None:
    (mine,) = ids(submit(api, {"type": "sms", "to": [PHONE], "text": "hi"}))
    for login, message_id in ((api.other, mine), (api.owner, "0" * 32), (api.owner, "x" * 100)):
        r = api.client.get(f"/v1/messages/{message_id}", headers=login.headers)
        assert (r.status_code, r.json()["status"]) == (404, "ERROR: MESSAGE NOT FOUND")
    assert api.client.get(f"/v1/messages/{mine}", headers=api.admin.headers).status_code == 200


def test_cancel_releases_the_reservation(api: Api) -> None:
    (message_id,) = ids(submit(api, {"type": "tts", "to": [PHONE], "text": "hi"}))
    r = api.client.post(f"/v1/messages/{message_id}/cancel", headers=api.owner.headers)
    assert r.status_code == 200 and (r.json()["code"], r.json()["status"]) == (604, "Cancelled")
    assert api.client.get("/v1/balance", headers=api.owner.headers).json()["balance_micros"] == BALANCE
    again = api.client.post(f"/v1/messages/{message_id}/cancel", headers=api.owner.headers)
    assert again.status_code == 404
    events = api.client.get(f"/v1/messages/{message_id}", headers=api.owner.headers).json()["events"]
    assert [e["kind"] for e in events] == ["queued", "cancelled"]
