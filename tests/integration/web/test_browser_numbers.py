"""The Numbers page in Debian's Chromium (Playwright) against a real `ivrgate serve`: the owner finds it in
the navigation, adds a number, is refused a number another account holds with the typed values kept,
changes the webhook, removes the number; the page reads at 375 px without horizontal scrolling."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from store import accounts, lists
from store.db import Database, resolve_url
from tests.integration.e2e.conftest import PASSWORD, USERNAME, Server, free_tcp_port, serve
from tests.integration.web.test_browser import Shots, chromium, log_in, playwright_api

__all__ = ["chromium", "serve"]

pytestmark = [pytest.mark.integration, pytest.mark.slow]
HOOK = "https://crm.example.com/sms/incoming"


def assign_elsewhere(server: Server, number: str) -> None:
    """Give `number` to a second owner, written straight to the server's store."""
    database = Database.open(resolve_url("", server.data_dir))
    now = dt.datetime.now(dt.UTC)
    try:
        with database.transaction() as session:
            other = accounts.create_account(session, username="other@example.com", password="pw-other-1",
                                            now=now)
            lists.add_virtual_number(session, number, other.id, HOOK, now)
    finally:
        database.dispose()


def test_owner_manages_numbers_in_the_browser(
    serve: Callable[..., Server], chromium: Callable[..., object], tmp_path: Path,
) -> None:
    server = serve(free_tcp_port())  # nothing is dialled: the trunk port only has to be a port
    assign_elsewhere(server, "+16045550111")
    shot = Shots(tmp_path / "screenshots")
    expect = playwright_api.expect
    page = chromium().pages[0]  # type: ignore[attr-defined]
    log_in(page, server.url, USERNAME, PASSWORD)
    page.get_by_role("link", name="Numbers", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Virtual numbers")

    page.get_by_label("Number (with its country code").fill("250 555 0100")
    page.get_by_label("Webhook (where incoming SMS").fill(HOOK)
    page.get_by_role("button", name="Add number").click()
    expect(page.get_by_role("status")).to_have_text("+12505550100 added: incoming SMS go to its webhook.")
    expect(page.locator("#numbers")).to_contain_text("+12505550100")

    page.get_by_label("Number (with its country code").fill("604 555 0111")
    page.get_by_label("Webhook (where incoming SMS").fill(HOOK + "/second")
    page.get_by_role("button", name="Add number").click()
    expect(page.get_by_role("alert")).to_contain_text("604 555 0111 is already assigned to an account.")
    expect(page.get_by_label("Number (with its country code")).to_have_value("604 555 0111")
    expect(page.get_by_label("Webhook (where incoming SMS")).to_have_value(HOOK + "/second")
    shot(page, "numbers-refused")

    page.get_by_label("Webhook of +12505550100", exact=True).fill("http://10.0.0.5/in")
    page.get_by_role("button", name="Save the webhook of +12505550100").click()
    expect(page.get_by_role("status")).to_have_text("Webhook of +12505550100 saved.")
    expect(page.get_by_label("Webhook of +12505550100", exact=True)).to_have_value("http://10.0.0.5/in")
    shot(page, "numbers")

    narrow = chromium(375, 812).pages[0]  # type: ignore[attr-defined]
    log_in(narrow, server.url, USERNAME, PASSWORD)
    narrow.goto(f"{server.url}/ui/numbers")
    expect(narrow.locator("#numbers")).to_contain_text("+12505550100")
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 375
    shot(narrow, "numbers-375")

    page.get_by_role("button", name="Remove +12505550100").click()
    expect(page.get_by_role("status")).to_have_text("+12505550100 removed: SMS to it are no longer received.")
    expect(page.locator("#numbers")).to_contain_text("No numbers yet")
    assert server.stop() == 0
