"""The security features as a client meets them: the real `ivrgate serve` (its default loop, uvloop) as a
subprocess, spoken to over HTTP. The rules themselves are tested in tests/integration/v1 and web."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from store.accounts import DEFAULT_HASHER
from store.db import Database, resolve_url
from store.models import Account
from tests.integration.e2e.conftest import PASSWORD, USERNAME, Server, fields, free_tcp_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_wrong_passwords_lock_the_username_with_retry_after(serve: Callable[..., Server]) -> None:
    # a lock long enough that the right password below surely falls inside it on a busy machine
    server = serve(free_tcp_port(), IVRGATE_LOGIN_THROTTLE__FIRST_LOCK_S="60",
                   IVRGATE_LOGIN_THROTTLE__MAX_LOCK_S="120")
    for guess in range(5):  # the free failures (login_throttle.user_free_failures)
        answer = httpx.post(f"{server.url}/balance", data={"username": USERNAME, "password": f"guess{guess}"})
        assert fields(answer.text)["STATUSCODE"] == "505"
    locked = httpx.post(f"{server.url}/balance", data={"username": USERNAME, "password": PASSWORD})
    assert fields(locked.text)["STATUSCODE"] == "505"  # the right password too, while the lock lasts
    assert 0 < int(locked.headers["Retry-After"]) <= 60


def test_a_retried_submission_with_its_key_is_written_once(serve: Callable[..., Server]) -> None:
    server = serve(free_tcp_port())
    form = {"username": USERNAME, "password": PASSWORD, "phone": "2506063167", "txt": "Disk full",
            "idempotency_key": "alert-4711"}
    first = fields(httpx.post(f"{server.url}/matrix_tts", data=form).text)
    again = fields(httpx.post(f"{server.url}/matrix_tts", data=form).text)
    assert first["STATUSCODE"] == again["STATUSCODE"] == "200"
    assert first["ID"] == again["ID"]
    other = fields(httpx.post(f"{server.url}/matrix_tts", data={**form, "txt": "Disk fine"}).text)
    assert other["STATUSTXT"] == "ERROR: IDEMPOTENCY KEY REUSED"


def test_the_gui_is_served_with_its_security_headers(serve: Callable[..., Server]) -> None:
    server = serve(free_tcp_port())
    page = httpx.get(f"{server.url}/ui/login")
    assert page.status_code == 200
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"


def test_a_login_upgrades_a_hash_made_with_older_parameters(serve: Callable[..., Server]) -> None:
    """The one login verdict as shipped: a password stored with weaker argon2 parameters (an account from
    an older release) still logs in, and the login rewrites its hash with the current parameters."""
    server = serve(free_tcp_port())
    database = Database.open(resolve_url("", server.data_dir))
    try:
        old = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
        with database.transaction() as session:
            session.execute(update(Account).where(Account.username == USERNAME).values(password_hash=old))
        answer = httpx.post(f"{server.url}/balance.json", data={"username": USERNAME, "password": PASSWORD})
        assert "BALANCE" in answer.json(), answer.text  # logged in (a refusal answers STATUSCODE)
        with database.read() as session:
            stored = session.scalar(select(Account.password_hash).where(Account.username == USERNAME))
    finally:
        database.dispose()
    assert stored != old and not DEFAULT_HASHER.check_needs_rehash(stored)
    assert DEFAULT_HASHER.verify(stored, PASSWORD)
