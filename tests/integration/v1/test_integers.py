"""Integers out of range are refused at the edge, on both databases: a path id no row can have is 404, a
query or body number past its column's range is 422, never a driver overflow (HTTP 500). SQLite's
integers are 64-bit (2**63 overflows the driver), PostgreSQL's Integer columns 32-bit (2**31 does)."""

from __future__ import annotations

import pytest

from store.models import INT4_MAX, INT8_MAX, MAX_MICROS
from tests.integration.v1.conftest import Api

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)]

TOO_BIG = (INT4_MAX + 1, INT8_MAX + 1, 10**30)


@pytest.mark.parametrize("number", TOO_BIG)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/groups/{n}"),
        ("PATCH", "/v1/groups/{n}"),
        ("DELETE", "/v1/groups/{n}"),
        ("GET", "/v1/groups/{n}/members"),
        ("DELETE", "/v1/groups/{n}/members/+12506063167"),
        ("GET", "/v1/subusers/{n}"),
        ("PATCH", "/v1/subusers/{n}"),
        ("POST", "/v1/subusers/{n}/password"),
    ],
)
def test_path_ids_out_of_range_are_404(api: Api, method: str, path: str, number: int) -> None:
    body = {"PATCH": {"name": "x"}, "POST": {"password": "pw-long-enough"}}.get(method)
    if path.startswith("/v1/subusers") and method == "PATCH":
        body = {"active": True}
    r = api.client.request(method, path.format(n=number), headers=api.owner.headers, json=body)
    assert r.status_code == 404, r.text
    assert r.json()["status"] == "ERROR: NOT FOUND"


@pytest.mark.parametrize("number", [*TOO_BIG, 0, -1, "abc"])
def test_top_up_of_an_impossible_account_is_404(api: Api, number: object) -> None:
    r = api.client.post(f"/v1/accounts/{number}/top-ups", headers=api.admin.headers,
                        json={"amount_micros": 1, "reference": "r-1"})
    assert r.status_code == 404, r.text


@pytest.mark.parametrize(
    "query",
    [
        f"/v1/ledger?before={INT8_MAX + 1}",
        "/v1/ledger?before=0",
        f"/v1/dnc?after={INT4_MAX + 1}",
        f"/v1/messages?user_id={INT4_MAX + 1}",
        f"/v1/messages?user_id={INT8_MAX + 1}",
        f"/v1/messages?status={10**30}",
        f"/v1/ledger?limit={10**30}",
    ],
)
def test_query_numbers_out_of_range_are_422(api: Api, query: str) -> None:
    r = api.client.get(query, headers=api.owner.headers)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == 500 and r.json()["status"] == "ERROR: INVALID REQUEST"


def test_the_largest_ids_each_column_holds_are_plain_answers(api: Api) -> None:
    h = api.owner.headers
    assert api.client.get(f"/v1/groups/{INT4_MAX}", headers=h).status_code == 404
    assert api.client.get(f"/v1/subusers/{INT4_MAX}", headers=h).status_code == 404
    ledger = api.client.get(f"/v1/ledger?before={INT8_MAX}", headers=h)
    assert ledger.status_code == 200 and ledger.json()["items"]  # the fixture's top-up
    assert api.client.get(f"/v1/dnc?after={INT4_MAX}", headers=h).json() == []
    listed = api.client.get(f"/v1/messages?user_id={INT4_MAX}", headers=h)
    assert listed.status_code == 200 and listed.json()["items"] == []


@pytest.mark.parametrize("amount", [1e23, INT8_MAX + 1, MAX_MICROS + 1, -1, 10**30])
def test_money_out_of_range_is_422(api: Api, amount: float) -> None:
    h = api.owner.headers
    created = api.client.post("/v1/subusers", headers=h, json={
        "username": "big@example.com", "password": "pw-big-spender", "spending_limit_micros": amount})
    assert created.status_code == 422, created.text
    updated = api.client.patch(f"/v1/subusers/{api.subuser.account_id}", headers=h,
                               json={"spending_limit_micros": amount})
    assert updated.status_code == 422, updated.text
    topped = api.client.post(f"/v1/accounts/{api.owner.account_id}/top-ups", headers=api.admin.headers,
                             json={"amount_micros": amount, "reference": "big"})
    assert topped.status_code == 422, topped.text


def test_the_largest_amount_is_accepted(api: Api) -> None:
    updated = api.client.patch(f"/v1/subusers/{api.subuser.account_id}", headers=api.owner.headers,
                               json={"spending_limit_micros": MAX_MICROS})
    assert updated.status_code == 200 and updated.json()["spending_limit_micros"] == MAX_MICROS
    topped = api.client.post(f"/v1/accounts/{api.owner.account_id}/top-ups", headers=api.admin.headers,
                             json={"amount_micros": MAX_MICROS, "reference": "largest"})
    assert topped.status_code == 201, topped.text
