"""The login throttle on every HTTP front (v1 Basic, legacy, /ui/login), on both databases: failures
per username and per source address lock with exponential back-off, checked before argon2 (a guess
during a lock costs none), the right password refused too during a lock, API keys unaffected, unlocked
by time, and shared by every gateway on the store. SMTP: tests/integration/smtp/test_throttle.py."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from fastapi.testclient import TestClient

from api.core.service import Gateway
from api.core.settings import Settings
from api.core.throttle import LoginThrottled, ThrottleSettings
from tests.integration.v1.conftest import Api, Login
from tests.integration.web.conftest import Browser

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)]

FREE = ThrottleSettings().user_free_failures


def basic(login: Login, password: str | None = None) -> dict[str, str]:
    token = base64.b64encode(f"{login.username}:{password or login.password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _wrong(api: Api, times: int, login: Login | None = None) -> None:
    who = login or api.owner
    for n in range(times):
        r = api.client.get("/v1/me", headers=basic(who, f"guess-{n}"))
        assert r.status_code == 401, r.text


def _later(api: Api, seconds: float) -> None:
    api.clock.now += dt.timedelta(seconds=seconds)


def test_v1_basic_locks_before_argon2_and_unlocks_by_time(api: Api) -> None:
    _wrong(api, FREE)
    runs = api.gateway.credentials.argon2_runs
    locked = api.client.get("/v1/me", headers=basic(api.owner))  # the right password, during the lock
    assert locked.status_code == 429 and locked.headers["Retry-After"] == "1"
    assert locked.json()["code"] == 505 and "too many failed logins" in locked.json()["detail"]
    for n in range(20):  # guesses during the lock cost no argon2
        assert api.client.get("/v1/me", headers=basic(api.owner, f"more-{n}")).status_code == 429
    assert api.gateway.credentials.argon2_runs == runs
    assert api.client.get("/v1/me", headers=api.owner.headers).status_code == 200  # API keys still work
    _later(api, 1.0)
    assert api.client.get("/v1/me", headers=basic(api.owner)).status_code == 200
    _wrong(api, FREE)  # all 401: the right password started the username's count again
    assert api.client.get("/v1/me", headers=basic(api.owner)).status_code == 429


def test_each_failure_past_the_allowance_doubles_the_lock(api: Api) -> None:
    _wrong(api, FREE)
    seen = []
    for _ in range(4):
        r = api.client.get("/v1/me", headers=basic(api.other))
        _later(api, 0)  # the other owner is not locked; the owner is
        r = api.client.get("/v1/me", headers=basic(api.owner, "still-guessing"))
        seen.append(int(r.headers["Retry-After"]))
        _later(api, seen[-1])
        assert api.client.get("/v1/me", headers=basic(api.owner, "again")).status_code == 401
    assert seen == [1, 2, 4, 8]


def test_one_address_trying_many_usernames_is_locked(api: Api) -> None:
    free = ThrottleSettings().address_free_failures
    for n in range(free):
        r = api.client.get("/v1/me", headers=basic(Login(0, f"nobody{n}@example.com", "", ""), "x"))
        assert r.status_code == 401
    refused = api.client.get("/v1/me", headers=basic(api.other))
    assert refused.status_code == 429 and refused.json()["code"] == 505
    assert api.client.get("/v1/me", headers=api.other.headers).status_code == 200


def test_legacy_routes_answer_505_with_retry_after(api: Api) -> None:
    form = {"username": api.owner.username}
    for n in range(FREE):
        r = api.client.post("/balance", data={**form, "password": f"guess-{n}"})
        assert "STATUSCODE: 505" in r.text and "Retry-After" not in r.headers
    runs = api.gateway.credentials.argon2_runs
    locked = api.client.post("/matrix_tts.json", data={**form, "password": api.owner.password,
                                                        "phone": "2506063167", "txt": "hi"})
    assert locked.status_code == 200 and locked.json()["STATUSCODE"] == 505
    assert locked.json()["STATUSTXT"] == "USER NOT FOUND OR WRONG PASSWORD"
    assert locked.headers["Retry-After"] == "1"
    assert api.gateway.credentials.argon2_runs == runs
    _later(api, 1.0)
    assert "STATUSCODE" not in api.client.post("/balance", data={**form, "password": api.owner.password}).text


def test_gui_login_is_throttled_too(api: Api) -> None:
    browser = Browser(TestClient(api.client.app))
    for n in range(FREE):
        page = browser.post("/ui/login", "/ui/login", {"username": api.owner.username, "password": f"g{n}"})
        assert page.status_code == 401
    page = browser.post("/ui/login", "/ui/login", {"username": api.owner.username,
                                                   "password": api.owner.password})
    assert page.status_code == 429 and page.headers["Retry-After"] == "1"
    assert "Too many failed logins: try again in 1 seconds." in page.text
    _later(api, 1.0)
    browser.login(api.owner)


def test_a_lock_is_shared_by_every_gateway_on_the_store(api: Api) -> None:
    settings = Settings(data_dir=api.data_dir, login_throttle=ThrottleSettings(recheck_s=0))
    other_process = Gateway(settings, api.db, now=api.clock)
    try:
        _wrong(api, FREE)
        with pytest.raises(LoginThrottled) as caught:
            other_process.login(api.owner.username, api.owner.password, source="192.0.2.1")
        assert caught.value.code == 505 and caught.value.retry_after_s == 1
        for n in range(FREE):  # and what it counts, the app sees (from another address)
            with pytest.raises(Exception, match="login refused"):
                other_process.login(api.other.username, f"g{n}", source="192.0.2.1")
        assert api.client.get("/v1/me", headers=basic(api.other)).status_code == 429
    finally:
        other_process.close()
