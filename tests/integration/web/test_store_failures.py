"""The GUI against a failing database: a page the database cannot answer is an error page with HTTP 503
and DATABASE ERROR (docs/gui.md), never a 500 with a traceback; a form posted meanwhile returns to the
form with the status text; and on SQLite a GUI write takes the store's writer lock (store.db)."""

from __future__ import annotations

import threading

import httpx
import pytest

from store.db import Database
from store.models import DoNotCall
from tests.integration.store.failures import broken_error, failing, locked_error, wait_until
from tests.integration.web.conftest import Api, Browser, csrf_of

pytestmark = pytest.mark.integration
BOTH = pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
PHONE = "+12506063167"


def blocked(db: Database) -> int:
    with db.read() as session:
        return session.query(DoNotCall).count()


@BOTH
def test_a_page_of_a_locked_database_is_a_503_page(owner: Browser, api: Api) -> None:
    with failing(api.db, "FROM do_not_call", locked_error(api.db)):
        page = owner.client.get("/ui/dnc")
    assert page.status_code == 503
    assert "DATABASE ERROR" in page.text and "Traceback" not in page.text
    assert owner.client.get("/ui/dnc").status_code == 200  # and back again


@BOTH
def test_the_login_check_of_a_failing_database_is_a_503_page(owner: Browser, api: Api) -> None:
    """Every page reads the session's account first (api.fronts.web.core.page_context)."""
    with failing(api.db, "FROM accounts", broken_error(api.db)):
        page = owner.client.get("/ui/history")
    assert page.status_code == 503 and "DATABASE ERROR" in page.text


@BOTH
def test_a_form_posted_to_a_failing_database_returns_with_the_status_text(owner: Browser, api: Api) -> None:
    token = csrf_of(owner.get("/ui/dnc").text)
    with failing(api.db, "INSERT INTO do_not_call", broken_error(api.db)):
        answer = owner.client.post("/ui/dnc", data={"csrf": token, "phone": PHONE},
                                   headers={"referer": "http://testserver/ui/dnc"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/dnc"
    assert "DATABASE ERROR" in owner.get("/ui/dnc").text
    assert blocked(api.db) == 0


def test_a_gui_write_waits_for_the_writer_lock(owner: Browser, api: Api) -> None:
    """The test holds the store's writer lock; the GUI's form write queues on it (seen in the lock's
    queue, not by the clock), writes nothing meanwhile, and goes through once the lock is free."""
    if api.db.writer is None:
        pytest.skip("the writer lock exists for SQLite only")
    writer = api.db.writer
    token = csrf_of(owner.get("/ui/dnc").text)
    answers: list[httpx.Response] = []
    request = threading.Thread(target=lambda: answers.append(
        owner.client.post("/ui/dnc", data={"csrf": token, "phone": PHONE}, follow_redirects=False)))
    with writer.held():
        request.start()
        wait_until(lambda: writer.waiting == 1, "the GUI write queued on the writer lock")
        assert blocked(api.db) == 0 and not answers
    request.join(20)
    assert [answer.status_code for answer in answers] == [303]
    assert blocked(api.db) == 1


def test_a_csv_import_waits_for_the_writer_lock_off_the_event_loop(owner: Browser, api: Api) -> None:
    """An import's write runs in the thread pool: while it waits for the lock, the app still answers."""
    if api.db.writer is None:
        pytest.skip("the writer lock exists for SQLite only")
    writer = api.db.writer
    token = csrf_of(owner.get("/ui/dnc").text)
    answers: list[httpx.Response] = []
    csv = ("list.csv", f"phone,note\n{PHONE},night\n".encode(), "text/csv")
    request = threading.Thread(target=lambda: answers.append(
        owner.client.post("/ui/dnc/import", data={"csrf": token}, files={"csvfile": csv},
                          follow_redirects=False)))
    with writer.held():
        request.start()
        wait_until(lambda: writer.waiting == 1, "the import queued on the writer lock")
        assert owner.client.get("/ui/dnc").status_code == 200  # the event loop is free
        assert blocked(api.db) == 0 and not answers
    request.join(20)
    assert [answer.status_code for answer in answers] == [303]
    assert blocked(api.db) == 1


def test_an_unreachable_database_is_a_503_page(owner: Browser, api: Api) -> None:
    """A real outage: the same login's cookie on an app whose database does not answer at all."""
    from fastapi.testclient import TestClient

    from api.core.service import Gateway
    from api.fronts.app import create_app
    from api.fronts.web.session import COOKIE_NAME
    from tests.integration.store.postgres import free_tcp_port

    down = Database.open(f"postgresql://nobody@127.0.0.1:{free_tcp_port()}/none")
    try:
        gateway = Gateway(api.gateway.settings, down, now=api.clock)  # the cookie's clock
        with TestClient(create_app(api.gateway.settings, gateway)) as client:
            client.cookies.set(COOKIE_NAME, owner.client.cookies[COOKIE_NAME], path="/ui")
            page = client.get("/ui/history", follow_redirects=False)
    finally:
        down.dispose()
    assert page.status_code == 503
    assert "DATABASE ERROR" in page.text and "Traceback" not in page.text
