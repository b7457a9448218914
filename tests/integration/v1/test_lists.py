"""Groups and do-not-call entries through the real app, CSV imports included."""

from __future__ import annotations

import pytest

from tests.integration.v1.conftest import OTHER_PHONE, PHONE, Api

pytestmark = pytest.mark.integration

CSV = "phone,name\n250 606 3167,Adam\n+1 (250) 123-1233,Eve\n\n"


def test_group_crud_members_and_csv_import(api: Api) -> None:
    h = api.owner.headers
    created = api.client.post("/v1/groups", headers=h, json={"name": "night shift"})
    assert created.status_code == 201 and created.json()["members"] == 0
    gid = created.json()["id"]
    imported = api.client.post(
        f"/v1/groups/{gid}/members/import", headers=h, files={"file": ("list.csv", CSV.encode(), "text/csv")}
    )
    assert imported.json() == {"rows": 2, "added": 2}
    members = api.client.get(f"/v1/groups/{gid}/members", headers=api.subuser.headers).json()
    assert members == [{"phone": OTHER_PHONE, "name": "Eve"}, {"phone": PHONE, "name": "Adam"}]
    renamed = api.client.post(
        f"/v1/groups/{gid}/members", headers=h, json=[{"phone": PHONE, "name": "Adam B"}]
    )
    assert renamed.json() == {"rows": 1, "added": 0}
    assert api.client.delete(f"/v1/groups/{gid}/members/{OTHER_PHONE}", headers=h).status_code == 204
    assert api.client.delete(f"/v1/groups/{gid}/members/{OTHER_PHONE}", headers=h).status_code == 404
    assert api.client.patch(f"/v1/groups/{gid}", headers=h, json={"name": "days"}).json()["name"] == "days"
    listed = api.client.get("/v1/groups", headers=h).json()
    assert [(g["name"], g["members"]) for g in listed] == [("days", 1)]
    assert api.client.get("/v1/groups", headers=api.other.headers).json() == []
    assert api.client.get(f"/v1/groups/{gid}", headers=api.other.headers).status_code == 404
    assert api.client.delete(f"/v1/groups/{gid}", headers=h).status_code == 204
    assert api.client.get(f"/v1/groups/{gid}", headers=h).status_code == 404


def test_group_refusals(api: Api) -> None:
    h = api.owner.headers
    gid = api.client.post("/v1/groups", headers=h, json={"name": "a"}).json()["id"]
    api.client.post("/v1/groups", headers=h, json={"name": "b"})
    assert api.client.post("/v1/groups", headers=h, json={"name": "a"}).status_code == 409
    assert api.client.patch(f"/v1/groups/{gid}", headers=h, json={"name": "b"}).status_code == 409
    bad = api.client.post(
        f"/v1/groups/{gid}/members/import",
        headers=h,
        files={"file": ("l.csv", b"phone\n2506063167\nnot a number\n", "text/csv")},
    )
    assert (bad.status_code, bad.json()["code"]) == (422, 513)
    assert api.client.get(f"/v1/groups/{gid}/members", headers=h).json() == []
    binary = api.client.post(
        f"/v1/groups/{gid}/members/import", headers=h, files={"file": ("l.csv", b"\xff\xfe\x00", "text/csv")}
    )
    assert binary.json()["status"] == "ERROR: INVALID CSV"


def test_do_not_call_entries(api: Api) -> None:
    h = api.owner.headers
    added = api.client.post(
        "/v1/dnc", headers=api.subuser.headers, json={"phone": "250-606-3167", "note": "asked"}
    )
    assert added.status_code == 201
    assert (added.json()["phone"], added.json()["global"]) == (PHONE, False)
    imported = api.client.post(
        "/v1/dnc/import",
        headers=h,
        files={"file": ("d.csv", b"2506063167\n2501231233,court order\n", "text/csv")},
    )
    assert imported.json() == {"rows": 2, "added": 1}
    listed = api.client.get("/v1/dnc", headers=h).json()
    assert [(e["phone"], e["note"]) for e in listed] == [(PHONE, "asked"), (OTHER_PHONE, "court order")]
    assert api.client.get("/v1/dnc", headers=api.other.headers).json() == []
    sent = api.client.post(
        "/v1/messages", headers=h, json={"type": "sms", "to": [PHONE], "text": "hi"}
    ).json()
    assert sent["messages"][0]["code"] == 502
    assert api.client.delete(f"/v1/dnc/{PHONE}", headers=api.subuser.headers).status_code == 403
    assert api.client.delete(f"/v1/dnc/{PHONE}", headers=h).status_code == 204
    assert api.client.delete(f"/v1/dnc/{PHONE}", headers=h).status_code == 404


def test_the_global_list_is_for_administrators(api: Api) -> None:
    body = {"phone": OTHER_PHONE, "global": True}
    assert api.client.post("/v1/dnc", headers=api.owner.headers, json=body).status_code == 403
    assert api.client.post("/v1/dnc", headers=api.admin.headers, json=body).json()["global"] is True
    assert api.client.get("/v1/dnc", headers=api.admin.headers, params={"global": "true"}).json()[0][
        "phone"
    ] == (OTHER_PHONE)
    sent = api.client.post(
        "/v1/messages", headers=api.other.headers, json={"type": "sms", "to": [OTHER_PHONE], "text": "hi"}
    ).json()
    assert sent["messages"][0]["code"] == 502
