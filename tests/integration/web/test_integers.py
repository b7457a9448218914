"""The GUI refuses numbers no row can have with an error page (404 for a path, 400 for a form or query
field), never a driver overflow, on both databases."""

from __future__ import annotations

import pytest

from store.models import INT4_MAX, INT8_MAX, MAX_MICROS
from tests.integration.v1.conftest import Api
from tests.integration.web.conftest import Browser

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)]


@pytest.mark.parametrize("path", [f"/ui/groups/{INT4_MAX + 1}", f"/ui/groups/{INT8_MAX + 1}",
                                  f"/ui/subusers/{INT8_MAX + 1}", "/ui/groups/abc"])
def test_pages_of_impossible_ids_are_404(owner: Browser, path: str) -> None:
    page = owner.client.get(path)
    assert page.status_code == 404 and "ERROR: NOT FOUND" in page.text


@pytest.mark.parametrize("path", [f"/ui/balance?before={INT8_MAX + 1}", f"/ui/dnc?after={INT4_MAX + 1}",
                                  f"/ui/history?user={INT8_MAX + 1}", f"/ui/reports?user={INT4_MAX + 1}",
                                  "/ui/history?user=%C2%B2"])
def test_query_numbers_out_of_range_are_400(owner: Browser, path: str) -> None:
    page = owner.client.get(path)
    assert page.status_code == 400, page.text


def test_amounts_past_the_limit_are_refused(api: Api, owner: Browser) -> None:
    too_much = str(MAX_MICROS // 1_000_000 + 1)
    page = f"/ui/subusers/{api.subuser.account_id}"
    page = owner.post(page, f"{page}/limit", {"spending_limit": too_much})
    assert "ERROR: INVALID SPENDING_LIMIT" in page.text
    me = api.client.get("/v1/me", headers=api.subuser.headers).json()
    assert me["spending_limit_micros"] is None
