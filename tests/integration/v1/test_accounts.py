"""Authentication, /v1/me, sub-users and API keys through the real app."""

from __future__ import annotations

import base64

import pytest

from tests.integration.v1.conftest import PHONE, Api

pytestmark = pytest.mark.integration


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer ivg_00000000_nope"},
        {"Authorization": "Bearer "},
        {"Authorization": "Token x"},
    ],
)
def test_missing_or_bad_keys_are_401(api: Api, headers: dict[str, str]) -> None:
    r = api.client.get("/v1/me", headers=headers)
    assert r.status_code == 401
    assert r.json()["code"] == 505 and r.headers["WWW-Authenticate"] == "Bearer"


def test_me_for_each_role(api: Api) -> None:
    owner = api.client.get("/v1/me", headers=api.owner.headers).json()
    sub = api.client.get("/v1/me", headers=api.subuser.headers).json()
    admin = api.client.get("/v1/me", headers=api.admin.headers).json()
    assert (owner["role"], owner["owner_id"]) == ("owner", api.owner.account_id)
    assert (sub["role"], sub["owner_id"], sub["username"]) == (
        "subuser",
        api.owner.account_id,
        "sub@example.com",
    )
    assert admin["role"] == "administrator"


def test_basic_auth_creates_the_first_key_which_then_works_and_can_be_revoked(api: Api) -> None:
    created = api.client.post(
        "/v1/keys", json={"name": "deploy"}, headers=basic("owner@example.com", "pw-owner")
    )
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith(f"ivg_{created.json()['prefix']}_")
    bearer = {"Authorization": f"Bearer {key}"}
    listed = api.client.get("/v1/keys", headers=bearer).json()
    assert [k["name"] for k in listed] == ["test", "deploy"] and all("key" not in k for k in listed)
    assert listed[1]["last_used_at"] is not None
    revoked = api.client.delete(f"/v1/keys/{created.json()['prefix']}", headers=api.owner.headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert api.client.get("/v1/me", headers=bearer).status_code == 401
    assert (
        api.client.delete(f"/v1/keys/{created.json()['prefix']}", headers=api.other.headers).status_code
        == 404
    )
    wrong = api.client.get("/v1/me", headers=basic("owner@example.com", "wrong"))
    assert (wrong.status_code, wrong.json()["code"]) == (401, 505)


def test_subuser_lifecycle(api: Api) -> None:
    h = api.owner.headers
    r = api.client.post(
        "/v1/subusers",
        headers=h,
        json={"username": "New@Example.com", "password": "pw-new-1", "spending_limit_micros": 50_000},
    )
    assert r.status_code == 201, r.text
    new = r.json()
    assert (new["username"], new["spending_limit_micros"], new["active"]) == ("new@example.com", 50_000, True)
    assert {s["username"] for s in api.client.get("/v1/subusers", headers=h).json()} == {
        "sub@example.com",
        "new@example.com",
    }
    duplicate = api.client.post(
        "/v1/subusers", headers=h, json={"username": "new@example.com", "password": "x"}
    )
    assert (duplicate.status_code, duplicate.json()["status"]) == (409, "ERROR: ALREADY EXISTS")
    bad_name = api.client.post("/v1/subusers", headers=h, json={"username": "nobody", "password": "x"})
    assert (bad_name.status_code, bad_name.json()["code"]) == (422, 510)

    login = basic("new@example.com", "pw-new-1")
    assert (
        api.client.post(
            "/v1/messages", headers=login, json={"type": "sms", "to": [PHONE], "text": "hi"}
        ).status_code
        == 202
    )
    spent = api.client.get(f"/v1/subusers/{new['id']}", headers=h).json()["spent_micros"]
    assert spent == 7500

    off = api.client.patch(f"/v1/subusers/{new['id']}", headers=h, json={"active": False})
    assert off.json()["active"] is False
    refused = api.client.get("/v1/me", headers=login)
    assert (refused.status_code, refused.json()["code"]) == (403, 506)
    api.client.patch(f"/v1/subusers/{new['id']}", headers=h, json={"active": True})
    assert (
        api.client.post(
            f"/v1/subusers/{new['id']}/password", headers=h, json={"password": "pw-new-2"}
        ).status_code
        == 204
    )
    assert api.client.get("/v1/me", headers=login).status_code == 401
    assert api.client.get("/v1/me", headers=basic("new@example.com", "pw-new-2")).status_code == 200
    unlimited = api.client.patch(f"/v1/subusers/{new['id']}", headers=h, json={"spending_limit_micros": None})
    assert unlimited.json()["spending_limit_micros"] is None


def test_subusers_belong_to_their_owner_only(api: Api) -> None:
    assert (
        api.client.get(f"/v1/subusers/{api.subuser.account_id}", headers=api.other.headers).status_code == 404
    )
    forbidden = api.client.get("/v1/subusers", headers=api.subuser.headers)
    assert (forbidden.status_code, forbidden.json()["status"]) == (403, "ERROR: FORBIDDEN")
    assert api.client.get("/v1/subusers", headers=api.admin.headers).status_code == 403
    assert (
        api.client.patch(
            f"/v1/subusers/{api.owner.account_id}", headers=api.owner.headers, json={"active": False}
        ).status_code
        == 404
    )
