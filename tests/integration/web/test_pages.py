"""The GUI's routes through the real app and store: sessions, CSRF, who sees what, forms that call the
service and api.core.manage, CSV export and imports, reports, top-ups, Listen."""

from __future__ import annotations

import csv
import io

import pytest

from api.fronts.web import session as sess
from store.models import Message
from tests.integration.web.conftest import Api, Browser, csrf_of

pytestmark = pytest.mark.integration
PHONE = "+12506063167"


def send_tts(b: Browser, phones: str = PHONE, text: str = "Adam, web server is down") -> str:
    answer = b.post("/ui/send?kind=tts", "/ui/send/tts",
                    {"phones": phones, "text": text, "language": "us", "gender": "male", "repeat": "1",
                     "response": "true"})
    assert answer.status_code == 200 and "1 message queued." in answer.text, answer.text
    return answer.text


def only_message(api: Api) -> Message:
    with api.db.read() as session:
        rows = list(session.query(Message))
        assert len(rows) == 1
        session.expunge_all()
        return rows[0]


def test_pages_need_a_login_and_refuse_open_redirects(browser: Browser, api: Api) -> None:
    answer = browser.client.get("/ui/history", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/ui/login?next=/ui/history")
    page = browser.get("/ui/login", next="https://evil.example/")
    assert 'name="next" value="/ui/"' in page.text
    wrong = browser.post("/ui/login", "/ui/login", {"username": api.owner.username, "password": "nope"})
    assert wrong.status_code == 401 and "Wrong username or password." in wrong.text
    assert browser.login(api.owner).url.path == "/ui/send"


def test_every_post_needs_the_csrf_token(owner: Browser, browser: Browser, api: Api) -> None:
    missing = owner.client.post("/ui/send/tts", data={"phones": PHONE, "text": "hello"})
    forged = owner.client.post("/ui/send/tts", data={"phones": PHONE, "text": "hello", "csrf": "x" * 32})
    assert missing.status_code == forged.status_code == 403
    login = browser.client.post("/ui/login", data={"username": api.owner.username,
                                                   "password": api.owner.password})
    assert login.status_code == 403  # a login cannot be forced from another site either
    with api.db.read() as session:
        assert session.query(Message).count() == 0


def test_a_forged_or_expired_cookie_is_no_session(owner: Browser, api: Api) -> None:
    cookie = owner.client.cookies[sess.COOKIE_NAME]
    body, _, mac = cookie.partition(".")
    owner.client.cookies.set(sess.COOKIE_NAME, body + "A." + mac, path="/ui")
    assert owner.get("/ui/history").url.path == "/ui/login"
    secret = api.client.app.state.web_secret  # type: ignore[attr-defined]
    old = sess.SessionData("t" * 32, api.owner.account_id, 0, "")
    assert sess.decode(sess.encode(old, secret), secret, now=sess.MAX_AGE_S + 1) is None
    assert sess.decode(sess.encode(old, secret), secret, now=60) == old


def test_tts_form_queues_a_message_the_subuser_cannot_see(owner: Browser, browser: Browser, api: Api) -> None:
    history = send_tts(owner)
    message = only_message(api)
    assert (message.kind, message.phone, message.settings["repeat"], message.settings["response"]) == (
        "tts", PHONE, 1, True)
    assert message.id in history and PHONE in history
    detail = owner.get(f"/ui/messages/{message.id}")
    assert "100 Queued" in detail.text and "queued" in detail.text
    browser.login(api.subuser)
    assert "No messages." in browser.get("/ui/history").text
    refused = browser.get(f"/ui/messages/{message.id}")
    assert refused.status_code == 404 and "MESSAGE NOT FOUND" in refused.text
    assert browser.get("/ui/history.csv").text.count("\n") == 1  # the header only


def test_history_filters_search_pages_and_csv(owner: Browser, api: Api) -> None:
    send_tts(owner, text="first survey")
    owner.post("/ui/send?kind=sms", "/ui/send/sms", {"phones": "+12501231233", "text": "an sms"})
    assert "first survey" not in owner.get("/ui/history", type="sms").text
    rows = owner.get("/ui/history/rows", q="1231233").text
    assert "+12501231233" in rows and PHONE not in rows
    exported = list(csv.DictReader(io.StringIO(owner.get("/ui/history.csv", type="tts").text)))
    assert [(r["kind"], r["phone"], r["status_text"]) for r in exported] == [("tts", PHONE, "Queued")]
    bad = owner.get("/ui/history", since="yesterday")
    assert bad.status_code == 400 and "ERROR: INVALID SINCE" in bad.text


def test_history_pages_by_cursor(owner: Browser, api: Api) -> None:
    phones = ",".join(f"+1250606{n:04d}" for n in range(30))
    owner.post("/ui/send?kind=sms", "/ui/send/sms", {"phones": phones, "text": "many"})
    first = owner.get("/ui/history").text
    assert first.count('data-label="Phone"') == 25 and 'rel="next"' in first
    cursor = first.split('rel="next"')[0].rsplit("cursor=", 1)[1].split('"')[0]
    second = owner.get("/ui/history", cursor=cursor.replace("&amp;", "&")).text
    assert second.count('data-label="Phone"') == 5


def test_subusers_add_disable_reset_and_limit(owner: Browser, browser: Browser, api: Api) -> None:
    added = owner.post("/ui/subusers", "/ui/subusers",
                       {"username": "team@example.com", "password": "longpassword", "spending_limit": "2.50"})
    assert "Sub-user team@example.com added." in added.text and "2.50 USD" in added.text
    sub_id = int(added.text.split('href="/ui/subusers/')[-1].split('"')[0])
    browser.login(type(api.owner)(sub_id, "team@example.com", "longpassword", ""))
    assert browser.get("/ui/history").url.path == "/ui/history"
    page = f"/ui/subusers/{sub_id}"
    owner.post(page, f"{page}/active", {"active": "false"})
    assert browser.get("/ui/history").url.path == "/ui/login"  # a disabled login's session ends
    owner.post(page, f"{page}/active", {"active": "true"})
    owner.post(page, f"{page}/password", {"password": "anotherpassword"})
    owner.post(page, f"{page}/limit", {"spending_limit": ""})
    shown = owner.get(page).text
    assert "active" in shown and "none" in shown
    old = {"username": "team@example.com", "password": "longpassword"}
    again = browser.post("/ui/login", "/ui/login", old)
    assert again.status_code == 401
    browser.login(type(api.owner)(sub_id, "team@example.com", "anotherpassword", ""))
    assert browser.get("/ui/subusers").status_code == 403  # sub-users manage no one


def test_password_change_ends_other_sessions(owner: Browser, browser: Browser, api: Api) -> None:
    browser.login(api.owner)
    wrong = owner.post("/ui/password", "/ui/password",
                       {"current": "bad", "new": "newpassword1", "confirm": "newpassword1"})
    assert "USER NOT FOUND OR WRONG PASSWORD" in wrong.text
    done = owner.post("/ui/password", "/ui/password",
                      {"current": api.owner.password, "new": "newpassword1", "confirm": "newpassword1"})
    assert "Password changed." in done.text
    assert owner.get("/ui/history").url.path == "/ui/history"
    assert browser.get("/ui/history").url.path == "/ui/login"


def test_do_not_call_and_groups_with_csv_import(owner: Browser, api: Api) -> None:
    dnc_csv = b"phone,note\n+12505550100,asked\n2505550101,\n"
    imported = owner.post("/ui/dnc", "/ui/dnc/import", files={"csvfile": ("dnc.csv", dnc_csv, "text/csv")})
    assert "Imported 2 rows: 2 new numbers." in imported.text and "+12505550101" in imported.text
    members = b"phone,name\n+12505550100,Ann\n+12506063167,Bob\n"
    created = owner.post("/ui/groups", "/ui/groups", {"name": "survey"},
                         files={"csvfile": ("m.csv", members, "text/csv")})
    assert "Group survey created with 2 rows." in created.text and "Bob" in created.text
    sent = owner.post("/ui/send?kind=tts", "/ui/send/tts", {"group": "survey", "text": "Press 1"})
    assert "1 message queued. Refused: +12505550100: PIN IN DO NOT CALL DATABASE" in sent.text
    removed = owner.post("/ui/dnc", "/ui/dnc/remove", {"phone": "+12505550101"})
    assert "+12505550101 removed" in removed.text


def test_reports_count_types_outcomes_and_keys(owner: Browser, api: Api) -> None:
    send_tts(owner)
    with api.db.transaction() as session:
        message = session.query(Message).one()
        message.status_code, message.status_text, message.response = 200, "Voice call answered, R = 2", "2"
        message.finished_at, message.cost = api.clock(), 15_000
    page = owner.get("/ui/reports").text
    assert '<dd data-kind="tts">1</dd>' in page and "100% (1 of 1 calls)" in page
    assert "<tr><td>2</td><td>1</td></tr>" in page and "0.0150 USD" in page
    assert page.count('<svg class="chart"') == 5


def test_top_up_by_the_manual_provider(owner: Browser, browser: Browser, api: Api) -> None:
    assert 'action="/ui/balance/topup"' not in owner.get("/ui/balance").text
    refused = owner.client.post("/ui/balance/topup", data={
        "csrf": csrf_of(owner.get("/ui/balance").text), "provider": "manual", "account": api.owner.username,
        "amount": "5", "reference": "INV-1"}, follow_redirects=True)
    assert "ERROR: FORBIDDEN" in refused.text
    browser.login(api.admin)
    form = {"provider": "manual", "account": api.owner.username, "amount": "5.25", "reference": "INV-1"}
    credited = browser.post("/ui/balance", "/ui/balance/topup", form).text
    assert "credited owner@example.com with reference INV-1" in credited
    assert "ERROR: ALREADY EXISTS" in browser.post("/ui/balance", "/ui/balance/topup", form).text
    shown = owner.get("/ui/balance").text
    assert "15.25 USD" in shown and "INV-1" in shown


def test_listen_renders_the_prompt_as_wav(owner: Browser) -> None:
    wav = owner.get("/ui/send/listen", kind="tts", text="Press one", language="us", gender="female")
    assert wav.headers["content-type"] == "audio/wav" and wav.content[:4] == b"RIFF"
    assert wav.content[8:16] == b"WAVEfmt " and int.from_bytes(wav.content[24:28], "little") == 8000
    empty = owner.get("/ui/send/listen", kind="tts", text="")
    assert empty.status_code == 400
