"""/v1/numbers through the real app: owners manage the virtual numbers their incoming SMS arrive on."""

from __future__ import annotations

import pytest

from api.core.phones import smpp_e164
from sms.inbound import InboundOptions, record_incoming
from sms.receipts import Incoming
from store import lists
from store.errors import DuplicateEntry
from tests.integration.v1.conftest import Api

pytestmark = pytest.mark.integration

HOOK = "https://crm.example.com/sms/incoming"
FIRST = {"number": "+12505550100", "webhook_url": HOOK}
FORBIDDEN = {"code": 500, "status": "ERROR: FORBIDDEN", "detail": "account owners only"}


def test_number_crud(api: Api) -> None:
    h = api.owner.headers
    created = api.client.post("/v1/numbers", headers=h,
                              json={"number": "(250) 555-0100", "webhook_url": f"  {HOOK}  "})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["number"], body["webhook_url"]) == ("+12505550100", HOOK)
    assert api.client.get("/v1/numbers", headers=h).json() == [body]
    assert api.client.get("/v1/numbers/+12505550100", headers=h).json() == body
    assert api.client.get("/v1/numbers/250-555-0100", headers=h).json() == body  # any format in the path
    changed = api.client.patch("/v1/numbers/+12505550100", headers=h,
                               json={"webhook_url": "http://10.0.0.5:8080/in"})
    assert changed.status_code == 200 and changed.json()["webhook_url"] == "http://10.0.0.5:8080/in"
    with api.db.read() as session:
        row = lists.virtual_number(session, "+12505550100")
        assert row is not None and row.account_id == api.owner.account_id
        assert row.webhook_url == "http://10.0.0.5:8080/in"
    assert api.client.delete("/v1/numbers/12505550100", headers=h).status_code == 204
    assert api.client.get("/v1/numbers", headers=h).json() == []
    assert api.client.delete("/v1/numbers/+12505550100", headers=h).status_code == 404
    with api.db.read() as session:
        assert lists.virtual_number(session, "+12505550100") is None


@pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
def test_a_number_belongs_to_one_account(api: Api) -> None:
    first = api.client.post("/v1/numbers", headers=api.owner.headers,
                            json={"number": "+12505550100", "webhook_url": HOOK})
    assert first.status_code == 201
    for login in (api.owner, api.other):
        again = api.client.post("/v1/numbers", headers=login.headers,
                                json={"number": "250 555 0100", "webhook_url": HOOK})
        assert again.status_code == 409, again.text
        assert again.json()["status"] == "ERROR: ALREADY EXISTS"
    o = api.other.headers
    assert api.client.get("/v1/numbers", headers=o).json() == []
    for method, extra in (("GET", {}), ("PATCH", {"json": {"webhook_url": HOOK}}), ("DELETE", {})):
        answer = api.client.request(method, "/v1/numbers/+12505550100", headers=o, **extra)
        assert answer.status_code == 404 and answer.json()["status"] == "ERROR: NOT FOUND", method
    with api.db.read() as session:
        row = lists.virtual_number(session, "+12505550100")
        assert row is not None and row.account_id == api.owner.account_id and row.webhook_url == HOOK


def test_owners_only(api: Api) -> None:
    api.client.post("/v1/numbers", headers=api.owner.headers, json=FIRST)
    for login in (api.subuser, api.admin):
        h = login.headers
        calls = [api.client.get("/v1/numbers", headers=h),
                 api.client.post("/v1/numbers", headers=h, json={**FIRST, "number": "+12505550101"}),
                 api.client.get("/v1/numbers/+12505550100", headers=h),
                 api.client.patch("/v1/numbers/+12505550100", headers=h, json={"webhook_url": HOOK}),
                 api.client.delete("/v1/numbers/+12505550100", headers=h)]
        for answer in calls:
            assert answer.status_code == 403, (login.username, answer.request.method, answer.text)
            assert answer.json() == FORBIDDEN
    assert api.client.get("/v1/numbers").status_code == 401
    assert len(api.client.get("/v1/numbers", headers=api.owner.headers).json()) == 1


@pytest.mark.parametrize(("number", "webhook", "code", "status"), [
    ("not a number", HOOK, 513, "INVALID PIN"),
    ("447911123456", HOOK, 513, "INVALID PIN"),          # possible only with the '+' it lacks
    ("+1 250 555 0100 ext 7", HOOK, 513, "INVALID PIN"),
    ("", HOOK, 513, "INVALID PIN"),
    ("+12505550100", "ftp://crm.example.com/in", 500, "ERROR: INVALID WEBHOOK_URL"),
    ("+12505550100", "crm.example.com/in", 500, "ERROR: INVALID WEBHOOK_URL"),
    ("+12505550100", "https:///no-host", 500, "ERROR: INVALID WEBHOOK_URL"),
    ("+12505550100", "https://crm.example.com/a b", 500, "ERROR: INVALID WEBHOOK_URL"),
    ("+12505550100", "   ", 500, "ERROR: INVALID WEBHOOK_URL"),
    ("+12505550100", "", 500, "ERROR: INVALID WEBHOOK_URL"),
    ("+12505550100", "https://crm.example.com/" + "a" * 2100, 500, "ERROR: INVALID WEBHOOK_URL"),
])
def test_bad_input_is_refused_with_its_code(
    api: Api, number: str, webhook: str, code: int, status: str
) -> None:
    answer = api.client.post("/v1/numbers", headers=api.owner.headers,
                             json={"number": number, "webhook_url": webhook})
    assert answer.status_code == 422, answer.text
    assert (answer.json()["code"], answer.json()["status"]) == (code, status)
    assert api.client.get("/v1/numbers", headers=api.owner.headers).json() == []


def test_bad_changes_keep_the_old_webhook(api: Api) -> None:
    h = api.owner.headers
    api.client.post("/v1/numbers", headers=h, json={"number": "+12505550100", "webhook_url": HOOK})
    bad = api.client.patch("/v1/numbers/+12505550100", headers=h, json={"webhook_url": "javascript:alert(1)"})
    assert bad.status_code == 422 and bad.json()["status"] == "ERROR: INVALID WEBHOOK_URL"
    extra = api.client.patch("/v1/numbers/+12505550100", headers=h, json={"webhook_url": HOOK, "owner": 3})
    assert extra.status_code == 422
    assert api.client.get("/v1/numbers/+12505550100", headers=h).json()["webhook_url"] == HOOK
    assert api.client.get("/v1/numbers/garbage", headers=h).json()["code"] == 513


def test_an_added_number_receives_sms(api: Api) -> None:
    """What the API writes is what the inbound path reads: an MO to the national form of the number."""
    api.client.post("/v1/numbers", headers=api.owner.headers, json={**FIRST, "number": "2505550100"})
    # the SMSC's national addresses, read as the inbound path reads them (TON 2: the default region)
    source, destination = (smpp_e164(digits, 2, 1, "US") for digits in ("6045550123", "2505550100"))
    incoming = Incoming(source=source, destination=destination, text="hello", smsc_id="mo1",
                        received_at=api.clock())
    with api.db.transaction() as session:
        recorded = record_incoming(session, incoming, api.clock(), InboundOptions(orgserver="gw"))
    assert recorded.message_id is not None and recorded.webhook


@pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
def test_a_racing_insert_is_already_exists_and_the_transaction_goes_on(api: Api) -> None:
    """Two fronts adding one number at once: the loser's insert (past api.core.numbers' check) hits the
    primary
    key and is DuplicateEntry (409), inside a savepoint, so the rest of its transaction still commits."""
    now = api.clock()
    with api.db.transaction() as session:
        lists.add_virtual_number(session, "+12505550100", api.owner.account_id, HOOK, now)
    with api.db.transaction() as session:
        with pytest.raises(DuplicateEntry, match=r"\+12505550100 is already assigned"):
            lists.add_virtual_number(session, "+12505550100", api.other.account_id, HOOK + "/x", now)
        lists.add_virtual_number(session, "+12505550101", api.other.account_id, HOOK, now)
    with api.db.read() as session:
        assert [(r.number, r.account_id) for r in lists.all_numbers(session)] == [
            ("+12505550100", api.owner.account_id), ("+12505550101", api.other.account_id)]
