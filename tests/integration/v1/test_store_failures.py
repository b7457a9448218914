"""v1 against a failing database: a read or write the database cannot answer is a coded 503 (504/507/508
DATABASE ERROR, docs/api-v1.md), never a 500 with a traceback; and on SQLite a v1 write takes the store's
writer lock (store.db) like the gateway's own writes, waiting while another writer holds it."""

from __future__ import annotations

import base64
import sqlite3
import threading
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.core.service import Gateway
from api.fronts.app import create_app
from store.db import Database
from store.models import DoNotCall
from tests.integration.store.failures import broken_error, failing, locked_error, wait_until
from tests.integration.v1.conftest import PHONE, Api, Login

pytestmark = pytest.mark.integration
BOTH = pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)


def basic(login: Login) -> dict[str, str]:
    """HTTP Basic: a login that only reads (an API key's login writes its last use)."""
    token = base64.b64encode(f"{login.username}:{login.password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def blocked(db: Database) -> int:
    with db.read() as session:
        return session.query(DoNotCall).count()


def assert_database_error(answer: httpx.Response, code: int) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == code and answer.json()["status"] == "DATABASE ERROR"
    assert "Traceback" not in answer.text


@BOTH
def test_a_read_of_a_locked_database_is_508(api: Api) -> None:
    with failing(api.db, "FROM do_not_call", locked_error(api.db)):
        answer = api.client.get("/v1/dnc", headers=api.owner.headers)
    assert_database_error(answer, 508)
    assert api.client.get("/v1/dnc", headers=api.owner.headers).status_code == 200  # and back again


@BOTH
def test_a_failed_read_is_504_and_a_failed_write_507(api: Api) -> None:
    with failing(api.db, "FROM do_not_call", broken_error(api.db)):
        read = api.client.get("/v1/dnc", headers=basic(api.owner))
    assert_database_error(read, 504)
    with failing(api.db, "INSERT INTO do_not_call", broken_error(api.db)):
        write = api.client.post("/v1/dnc", headers=basic(api.owner), json={"phone": PHONE})
    assert_database_error(write, 507)
    assert blocked(api.db) == 0  # rolled back


def test_a_write_to_a_database_locked_by_another_connection_is_508(api: Api, tmp_path: Path) -> None:
    """A real lock: another connection holds SQLite's write lock (not ours: it bypasses the writer lock),
    and the v1 write gives up after its busy timeout."""
    if api.db.dialect != "sqlite":
        pytest.skip("SQLite's database-wide write lock")
    impatient = Database.open(str(api.db.url), busy_timeout_s=0.05)
    gateway = Gateway(api.gateway.settings, impatient, now=api.clock)
    other = sqlite3.connect(str(api.db.url.database), isolation_level=None)
    try:
        with TestClient(create_app(api.gateway.settings, gateway)) as client:
            other.execute("BEGIN IMMEDIATE")
            answer = client.post("/v1/dnc", headers=basic(api.owner), json={"phone": PHONE})
            other.execute("ROLLBACK")
    finally:
        other.close()
        impatient.dispose()
    assert_database_error(answer, 508)
    assert blocked(api.db) == 0


def test_a_v1_write_waits_for_the_writer_lock(api: Api) -> None:
    """The test holds the store's writer lock; the v1 write queues on it (seen in the lock's queue, not
    by the clock), writes nothing meanwhile, and goes through once the lock is free."""
    if api.db.writer is None:
        pytest.skip("the writer lock exists for SQLite only")
    writer = api.db.writer
    answers: list[httpx.Response] = []
    request = threading.Thread(target=lambda: answers.append(
        api.client.post("/v1/dnc", headers=basic(api.owner), json={"phone": PHONE})))
    with writer.held():
        request.start()
        wait_until(lambda: writer.waiting == 1, "the v1 write queued on the writer lock")
        assert blocked(api.db) == 0 and not answers
    request.join(20)
    assert [answer.status_code for answer in answers] == [201]
    assert blocked(api.db) == 1


def test_an_unreachable_database_is_508_on_every_v1_route(api: Api) -> None:
    """A real outage: nothing listens where the database should be (the login's read fails first)."""
    from tests.integration.store.postgres import free_tcp_port

    down = Database.open(f"postgresql://nobody@127.0.0.1:{free_tcp_port()}/none")
    try:
        with TestClient(create_app(api.gateway.settings, Gateway(api.gateway.settings, down))) as client:
            answers = [client.get("/v1/dnc", headers=basic(api.owner)),
                       client.post("/v1/dnc", headers=api.owner.headers, json={"phone": PHONE})]
    finally:
        down.dispose()
    for answer in answers:
        assert_database_error(answer, 508)
