"""Balance, ledger, top-ups, rates, carrier lookup and the callback secret through the real app."""

from __future__ import annotations

import pytest

from api.core.signing import SIGNATURE_HEADER, CallbackSecrets, CallbackSettings
from tests.integration.v1.conftest import BALANCE, PHONE, Api

pytestmark = pytest.mark.integration


def test_balance(api: Api) -> None:
    r = api.client.get("/v1/balance", headers=api.subuser.headers)
    assert r.json() == {"balance_micros": BALANCE, "balance": "10.000000", "currency": "USD",
                        "spending_limit_micros": None, "spent_micros": 0}


@pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
def test_admin_top_up_once_per_reference_and_the_ledger_pages(api: Api) -> None:
    url = f"/v1/accounts/{api.owner.account_id}/top-ups"
    for n in range(3):
        r = api.client.post(
            url, headers=api.admin.headers, json={"amount_micros": 1_000_000, "reference": f"inv-{n}"}
        )
        assert r.status_code == 201, r.text
    again = api.client.post(
        url, headers=api.admin.headers, json={"amount_micros": 1_000_000, "reference": "inv-0"}
    )
    assert (again.status_code, again.json()["status"]) == (409, "ERROR: ALREADY EXISTS")
    assert (
        api.client.get("/v1/balance", headers=api.owner.headers).json()["balance_micros"]
        == BALANCE + 3_000_000
    )
    pages, before = [], None
    while True:
        page = api.client.get(
            "/v1/ledger",
            params={"limit": 2, **({"before": before} if before else {})},
            headers=api.owner.headers,
        ).json()
        pages.append([e["note"] for e in page["items"]])
        before = page["next_before"]
        if before is None:
            break
    assert [note for page in pages for note in page] == ["inv-2", "inv-1", "inv-0", ""]


@pytest.mark.parametrize("who", ["owner", "subuser"])
def test_only_administrators_top_up(api: Api, who: str) -> None:
    login = getattr(api, who)
    r = api.client.post(
        f"/v1/accounts/{api.owner.account_id}/top-ups",
        headers=login.headers,
        json={"amount_micros": 5, "reference": "free money"},
    )
    assert (r.status_code, r.json()["status"]) == (403, "ERROR: FORBIDDEN")


def test_top_up_targets_must_be_owners(api: Api) -> None:
    for target in (api.subuser.account_id, 9999):
        r = api.client.post(
            f"/v1/accounts/{target}/top-ups",
            headers=api.admin.headers,
            json={"amount_micros": 5, "reference": "x"},
        )
        assert r.status_code == 404
    negative = api.client.post(
        f"/v1/accounts/{api.owner.account_id}/top-ups",
        headers=api.admin.headers,
        json={"amount_micros": -5, "reference": "x"},
    )
    assert negative.status_code == 422


def test_subusers_see_only_their_own_ledger_entries(api: Api) -> None:
    api.client.post(
        "/v1/messages", headers=api.subuser.headers, json={"type": "sms", "to": [PHONE], "text": "hi"}
    )
    mine = api.client.get("/v1/ledger", headers=api.subuser.headers).json()["items"]
    assert [(e["kind"], e["amount_micros"], e["user_id"]) for e in mine] == [
        ("reserve", -7500, api.subuser.account_id)
    ]
    assert len(api.client.get("/v1/ledger", headers=api.owner.headers).json()["items"]) == 2


def test_rates(api: Api) -> None:
    listed = api.client.get("/v1/rates", headers=api.owner.headers).json()
    assert listed == [
        {
            "prefix": "1",
            "sms_micros": 7500,
            "voice_minute_micros": 13000,
            "tts_minute_micros": 15000,
            "currency": "USD",
            "description": "North America",
        }
    ]
    quote = api.client.get("/v1/rates/2506063167", params={"type": "tts"}).json()
    assert quote == {
        "phone": PHONE,
        "type": "tts",
        "rate_micros": 15000,
        "rate": "0.015000",
        "currency": "USD",
    }
    assert api.client.get("/v1/rates/+442071234567").json()["code"] == 513
    assert api.client.get("/v1/rates/2506063167", params={"type": "fax"}).status_code == 422


def test_carrier(api: Api) -> None:
    us = api.client.get(f"/v1/carrier/{PHONE}", headers=api.owner.headers).json()
    assert (us["phone"], us["country_code"], us["carrier"]) == (PHONE, "CA", "")
    uk = api.client.get("/v1/carrier/+447400123456", headers=api.owner.headers).json()
    assert (uk["country_code"], uk["line_type"], uk["valid"]) == ("GB", "mobile", True)
    assert uk["carrier"] == "Three"
    assert api.client.get("/v1/carrier/abc", headers=api.owner.headers).json()["code"] == 513
    assert api.client.get(f"/v1/carrier/{PHONE}").status_code == 401


def test_callback_secret_is_the_owner_accounts(api: Api) -> None:
    owner = api.client.get("/v1/callbacks/secret", headers=api.owner.headers).json()
    sub = api.client.get("/v1/callbacks/secret", headers=api.subuser.headers).json()
    other = api.client.get("/v1/callbacks/secret", headers=api.other.headers).json()
    assert owner == sub and owner["secret"] != other["secret"] and owner["header"] == SIGNATURE_HEADER
    expected = CallbackSecrets.load(CallbackSettings(), api.data_dir).for_account(api.owner.account_id)
    assert owner["secret"] == expected
