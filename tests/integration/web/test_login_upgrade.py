"""A GUI login through the one login verdict (api.core.service.Gateway.login): an account whose stored hash
was
made with older argon2 parameters gets it upgraded, and the session opened by that login holds (it is
bound to the stored hash, which the login upgrades before the session is made)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.core.service import Gateway
from api.core.settings import Settings
from api.fronts.app import create_app
from ivr.settings import FetchSettings
from store import accounts
from tests.integration.sms_settings import smsc_elsewhere
from tests.integration.web.conftest import Api, Browser

pytestmark = pytest.mark.integration


def stored_hash(api: Api, username: str) -> str:
    with api.db.read() as session:
        found = accounts.find_account(session, username)
        assert found is not None
        return found.password_hash


def test_a_gui_login_upgrades_an_old_hash_and_keeps_its_session(api: Api) -> None:
    old = stored_hash(api, api.owner.username)
    assert accounts.DEFAULT_HASHER.check_needs_rehash(old)  # the fixtures' cheap parameters
    settings = smsc_elsewhere(Settings(data_dir=api.data_dir, fetch=FetchSettings(allow_private=True)))
    production = Gateway(settings, api.db, now=api.clock)  # current parameters, as `ivrgate serve` builds it
    with TestClient(create_app(settings, production)) as client:
        browser = Browser(client)
        assert browser.login(api.owner).url.path == "/ui/send"
        new = stored_hash(api, api.owner.username)
        assert new != old and not accounts.DEFAULT_HASHER.check_needs_rehash(new)
        history = client.get("/ui/history", follow_redirects=False)
        assert history.status_code == 200  # still logged in after the upgrade
        again = Browser(TestClient(client.app))
        assert again.login(api.owner).url.path == "/ui/send"
    assert stored_hash(api, api.owner.username) == new  # upgraded once
