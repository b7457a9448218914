"""The roles of docs/api-v1.md ("Roles"), enforced once in api.core.manage and seen through every front: v1,
the legacy `balance` and the GUI. A sub-user edits the account's groups but never deletes one, sees what
is left of its own spending limit instead of the owner's balance, and loses its API keys when the owner
resets its password."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.integration.v1.conftest import BALANCE, PHONE, Api
from tests.integration.web.conftest import Browser

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)]

LIMIT = 50_000
TTS_RESERVATION = 15_000 * 5  # the tts rate per minute, for the dialer's default maximum call length


def _group(api: Api) -> int:
    r = api.client.post("/v1/groups", headers=api.owner.headers,
                        json={"name": "oncall", "members": [{"phone": PHONE, "name": "Adam"}]})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _limit(api: Api, micros: int | None) -> None:
    r = api.client.patch(f"/v1/subusers/{api.subuser.account_id}", headers=api.owner.headers,
                         json={"spending_limit_micros": micros})
    assert r.status_code == 200, r.text


def test_a_subuser_edits_groups_but_never_deletes_one(api: Api) -> None:
    group, sub = _group(api), api.subuser.headers
    assert api.client.patch(f"/v1/groups/{group}", headers=sub, json={"name": "night"}).status_code == 200
    added = api.client.post(f"/v1/groups/{group}/members", headers=sub, json=[{"phone": "250-123-1233"}])
    assert added.json() == {"rows": 1, "added": 1}
    assert api.client.delete(f"/v1/groups/{group}/members/+12501231233", headers=sub).status_code == 204
    refused = api.client.delete(f"/v1/groups/{group}", headers=sub)
    assert (refused.status_code, refused.json()["status"]) == (403, "ERROR: FORBIDDEN")
    assert api.client.get(f"/v1/groups/{group}", headers=api.owner.headers).json()["name"] == "night"
    assert api.client.delete(f"/v1/groups/{group}", headers=api.owner.headers).status_code == 204


def test_a_limited_subuser_sees_what_is_left_of_its_limit(api: Api) -> None:
    _limit(api, LIMIT)
    sub = api.client.get("/v1/balance", headers=api.subuser.headers).json()
    assert (sub["balance_micros"], sub["spending_limit_micros"], sub["spent_micros"]) == (LIMIT, LIMIT, 0)
    sent = api.client.post("/v1/messages", headers=api.subuser.headers,
                           json={"type": "sms", "to": [PHONE], "text": "disk full"})
    assert sent.status_code == 202, sent.text
    after = api.client.get("/v1/balance", headers=api.subuser.headers).json()
    assert after["balance_micros"] == LIMIT - 7_500 and after["spent_micros"] == 7_500
    owner = api.client.get("/v1/balance", headers=api.owner.headers).json()
    assert owner["balance_micros"] == BALANCE - 7_500 and owner["spending_limit_micros"] is None
    legacy = api.client.get("/balance", params={"username": api.subuser.username,
                                                "password": api.subuser.password})
    assert legacy.text.startswith("BALANCE: 0.0425\n")  # what is left of its limit, not the owner's 9.99


def test_a_subuser_without_a_limit_spends_and_sees_the_owners_balance(api: Api) -> None:
    sub = api.client.get("/v1/balance", headers=api.subuser.headers).json()
    assert (sub["balance_micros"], sub["spending_limit_micros"], sub["spent_micros"]) == (BALANCE, None, 0)


def test_a_limit_below_what_was_spent_leaves_nothing(api: Api) -> None:
    api.client.post("/v1/messages", headers=api.subuser.headers,
                    json={"type": "sms", "to": [PHONE], "text": "disk full"})
    _limit(api, 1_000)
    assert api.client.get("/v1/balance", headers=api.subuser.headers).json()["balance_micros"] == 0


def test_a_password_reset_revokes_the_subusers_keys_only(api: Api) -> None:
    second = api.client.post("/v1/keys", headers=api.subuser.headers, json={"name": "ci"}).json()["key"]
    reset = api.client.post(f"/v1/subusers/{api.subuser.account_id}/password", headers=api.owner.headers,
                            json={"password": "n3w-s3cret"})
    assert reset.status_code == 204
    for key in (api.subuser.key, second):
        assert api.client.get("/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    keys = api.client.get("/v1/keys", headers=_basic(api.subuser.username, "n3w-s3cret")).json()
    assert all(k["revoked_at"] is not None for k in keys)
    assert api.client.get("/v1/me", headers=api.owner.headers).status_code == 200
    assert api.client.get("/v1/me", headers=api.other.headers).status_code == 200


def _basic(username: str, password: str) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


# --- the GUI asks the same rules ---------------------------------------------------------------------------


def _browser(api: Api, login: str) -> Browser:
    browser = Browser(TestClient(api.client.app))
    browser.login(getattr(api, login))
    return browser


def test_the_gui_refuses_a_subuser_deleting_a_group(api: Api) -> None:
    group, sub = _group(api), _browser(api, "subuser")
    page = sub.get(f"/ui/groups/{group}")
    assert page.status_code == 200 and f"/ui/groups/{group}/delete" not in page.text
    refused = sub.post(f"/ui/groups/{group}", f"/ui/groups/{group}/delete")
    assert "ERROR: FORBIDDEN" in refused.text
    assert api.client.get(f"/v1/groups/{group}", headers=api.owner.headers).status_code == 200
    owner = _browser(api, "owner")
    assert f"/ui/groups/{group}/delete" in owner.get(f"/ui/groups/{group}").text


def test_the_gui_shows_a_limited_subuser_its_own_funds(api: Api) -> None:
    _limit(api, LIMIT)
    page = _browser(api, "subuser").get("/ui/balance").text
    assert 'id="balance">0.05 USD<' in page and "spending limit of 0.05 USD" in page
    assert "10.00 USD" not in page


def test_a_gui_password_reset_revokes_the_subusers_keys(api: Api) -> None:
    owner = _browser(api, "owner")
    page = f"/ui/subusers/{api.subuser.account_id}"
    done = owner.post(page, f"{page}/password", {"password": "n3w-s3cret!"})
    assert "API keys are revoked" in done.text
    assert api.client.get("/v1/me", headers=api.subuser.headers).status_code == 401
