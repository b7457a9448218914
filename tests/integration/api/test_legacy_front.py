"""The legacy routes' short ASGI path (api.fronts.app.App.legacy_front) answers exactly as the mounted
Starlette
routes do: the same status, media type and body for successes, refusals, Starlette's own 400, the body
limit and a bug; other methods still get the router's 405."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.core.service import Gateway
from api.core.settings import Settings
from api.fronts import legacy
from api.fronts.app import App, create_app
from tests.integration.api.conftest import account

pytestmark = pytest.mark.integration

TTS = account(phone="12506063167", txt="Adam, web server is down")
REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/matrix_tts", {"data": TTS}),
    ("POST", "/matrix_tts.json", {"data": TTS}),
    ("GET", "/matrix_tts", {"params": TTS}),
    ("POST", "/matrix_tts", {"data": {**TTS, "password": "wrong-pass"}}),
    ("POST", "/matrix_tts", {"data": {"username": TTS["username"]}}),
    ("POST", "/matrix", {"data": account(phone="12506063167", txt="hi")}),
    ("POST", "/matrix_status.json", {"data": account(id="0" * 32)}),
    ("GET", "/balance", {"params": account()}),
    ("GET", "/sms_rate.json", {"params": {"phone": "12506063167"}}),
    ("POST", "/matrix_vtts.json", {"content": b"{broken", "headers": {"Content-Type": "application/json"}}),
    ("POST", "/matrix_tts", {"content": b"&".join([b"a=1"] * (legacy.MAX_FIELDS + 1)),
                             "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
    ("POST", "/matrix_tts", {"content": b"x" * (2 * 1024 * 1024),
                             "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
    ("POST", "/matrix_voice", {"content": b"--b\r\nbroken",
                               "headers": {"Content-Type": "multipart/form-data; boundary=b"}}),
]
ID = re.compile(rb"[0-9a-f]{32}")


@pytest.fixture
def clients(settings: Settings, gateway: Gateway) -> Iterator[tuple[TestClient, TestClient]]:
    """(the app with its short path, the same app answering through the mounted routes only)."""
    short, routed = create_app(settings, gateway), create_app(settings, gateway)
    assert isinstance(short, App) and short.legacy_front is not None
    routed.legacy_front = None
    with TestClient(short, raise_server_exceptions=False) as a, \
            TestClient(routed, raise_server_exceptions=False) as b:
        yield a, b


def _seen(client: TestClient, method: str, path: str, options: dict[str, Any]) -> tuple[int, str, bytes]:
    answer = client.request(method, path, **options)
    return answer.status_code, answer.headers.get("content-type", ""), ID.sub(b"<id>", answer.content)


@pytest.mark.parametrize(
    ("method", "path", "options"), REQUESTS, ids=[f"{m} {p} {i}" for i, (m, p, _) in enumerate(REQUESTS)]
)
def test_the_short_path_answers_as_the_routes_do(
    clients: tuple[TestClient, TestClient], method: str, path: str, options: dict[str, Any]
) -> None:
    short, routed = clients
    assert _seen(short, method, path, options) == _seen(routed, method, path, options)


def test_starlettes_own_refusals_keep_their_shape(clients: tuple[TestClient, TestClient]) -> None:
    short, _ = clients
    too_many = short.post("/matrix_tts", content=b"&".join([b"a=1"] * (legacy.MAX_FIELDS + 1)),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert too_many.status_code == 400 and "Too many fields" in too_many.json()["detail"]
    assert short.put("/matrix_tts", data=TTS).status_code == 405  # through the router: GET and POST only
    assert short.get("/healthz").status_code == 200  # everything else is the FastAPI app's


def test_a_bug_on_the_short_path_is_http_500_with_the_generic_body(
    clients: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(gateway: Gateway, data: dict[str, Any], as_json: bool) -> str:
        raise RuntimeError("injected")

    monkeypatch.setitem(legacy.HANDLERS, "balance", broken)
    short, routed = clients
    answers = [client.get("/balance.json", params=account()) for client in (short, routed)]
    assert [a.status_code for a in answers] == [500, 500]
    assert answers[0].content == answers[1].content and b"injected" not in answers[0].content
    assert "GET /balance.json failed" in caplog.text and "RuntimeError: injected" in caplog.text
