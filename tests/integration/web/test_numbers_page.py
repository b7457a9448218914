"""/ui/numbers through the real app and store: owners add, change and remove virtual numbers; a refused
form comes back with what was typed and the reason in plain words; CSRF; sub-users are refused."""

from __future__ import annotations

import html

import pytest

from store import lists
from tests.integration.web.conftest import Api, Browser

pytestmark = pytest.mark.integration
HOOK = "https://crm.example.com/sms/incoming"


def stored(api: Api, number: str) -> tuple[int, str] | None:
    with api.db.read() as session:
        row = lists.virtual_number(session, number)
        return None if row is None else (row.account_id, row.webhook_url)


def test_owner_adds_changes_and_removes_a_number(owner: Browser, api: Api) -> None:
    page = owner.get("/ui/numbers")
    assert page.status_code == 200 and 'href="/ui/numbers" aria-current="page">Numbers<' in page.text
    added = owner.post("/ui/numbers", "/ui/numbers", {"number": "(250) 555-0100", "webhook_url": HOOK})
    assert added.status_code == 200 and added.url.path == "/ui/numbers"
    assert "+12505550100 added: incoming SMS go to its webhook." in added.text
    assert stored(api, "+12505550100") == (api.owner.account_id, HOOK)
    changed = owner.post("/ui/numbers", "/ui/numbers/change",
                         {"number": "+12505550100", "webhook_url": "http://10.0.0.5/in"})
    assert "Webhook of +12505550100 saved." in changed.text and 'value="http://10.0.0.5/in"' in changed.text
    assert stored(api, "+12505550100") == (api.owner.account_id, "http://10.0.0.5/in")
    removed = owner.post("/ui/numbers", "/ui/numbers/remove", {"number": "+12505550100"})
    assert "+12505550100 removed: SMS to it are no longer received." in removed.text
    assert "No numbers yet" in removed.text and stored(api, "+12505550100") is None


def test_a_refused_form_keeps_what_was_typed(owner: Browser, browser: Browser, api: Api) -> None:
    with api.db.transaction() as session:
        lists.add_virtual_number(session, "+12505550100", api.other.account_id, HOOK, api.clock())
    taken = owner.post("/ui/numbers", "/ui/numbers", {"number": "250 555 0100", "webhook_url": HOOK + "/x"})
    assert taken.status_code == 409
    text = html.unescape(taken.text)
    assert "250 555 0100 is already assigned to an account. A number can belong to one account only." in text
    assert 'value="250 555 0100"' in text and f'value="{HOOK}/x"' in text
    bad_number = owner.post("/ui/numbers", "/ui/numbers", {"number": "call me", "webhook_url": HOOK})
    assert bad_number.status_code == 400
    text = html.unescape(bad_number.text)
    assert "“call me” is not a phone number. Write it with its country code" in text
    assert 'value="call me"' in text and f'value="{HOOK}"' in text
    bad_hook = owner.post("/ui/numbers", "/ui/numbers", {"number": "+12505550101", "webhook_url": "crm/in"})
    assert bad_hook.status_code == 400
    assert "The webhook must be a whole web address starting with https:// or http://" in bad_hook.text
    assert 'value="+12505550101"' in bad_hook.text and 'value="crm/in"' in bad_hook.text
    assert stored(api, "+12505550101") is None and stored(api, "+12505550100") == (api.other.account_id, HOOK)
    owner.post("/ui/numbers", "/ui/numbers", {"number": "+12505550101", "webhook_url": HOOK})
    bad_change = owner.post("/ui/numbers", "/ui/numbers/change",
                            {"number": "+12505550101", "webhook_url": "ftp://crm.example.com/in"})
    assert bad_change.status_code == 400
    assert 'value="ftp://crm.example.com/in" aria-invalid="true"' in bad_change.text
    assert stored(api, "+12505550101") == (api.owner.account_id, HOOK)
    foreign = owner.post("/ui/numbers", "/ui/numbers/remove", {"number": "+12505550100"})
    assert "ERROR: NOT FOUND" in foreign.text and stored(api, "+12505550100") is not None


def test_posts_need_csrf_and_sub_users_are_refused(owner: Browser, browser: Browser, api: Api) -> None:
    forged = owner.client.post("/ui/numbers", data={"number": "+12505550100", "webhook_url": HOOK})
    assert forged.status_code == 403 and stored(api, "+12505550100") is None
    browser.login(api.subuser)
    assert "/ui/numbers" not in browser.get("/ui/history").text  # not in the sub-user's navigation
    assert browser.get("/ui/numbers").status_code == 403
    refused = browser.post("/ui/history", "/ui/numbers", {"number": "+12505550100", "webhook_url": HOOK})
    assert "ERROR: FORBIDDEN" in refused.text and stored(api, "+12505550100") is None
