"""The issue's browser demonstration: Debian's Chromium driven by Playwright against a real `ivrgate serve`
(worker and engine pool inside) whose trunk is the built-in test phone pressing 1. Log in, Listen, send a
TTS, watch it reach `R = 1` in the history, find it in the report, add a sub-user, log in as that
sub-user and fail to see the owner's message; a screenshot of every page, and the 375 px layout."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.e2e.conftest import PASSWORD, ROOT, USERNAME, PhoneProcess, Server, phone, serve
from tests.integration.web.conftest import ensure_chromium

__all__ = ["phone", "serve"]

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.integration, pytest.mark.slow]

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DOCS_SHOTS = ROOT / "docs" / "screenshots"
SUB_USER, SUB_PASSWORD = "team@hotmail.com", "team-pass-123"


class Shots:
    """Saves a screenshot of each page under the test's directory, and once into docs/screenshots."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, page: object, name: str) -> Path:
        path = self.directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        assert path.stat().st_size > 1000
        if DOCS_SHOTS.is_dir() and not (DOCS_SHOTS / path.name).exists():
            shutil.copyfile(path, DOCS_SHOTS / path.name)
        return path


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Callable[..., object]]:
    """A factory of fresh browser contexts (own user-data-dir each) on Debian's Chromium."""
    executable = ensure_chromium()
    contexts: list[object] = []
    with playwright_api.sync_playwright() as p:

        def open_context(width: int = 1000, height: int = 760) -> object:
            profile = tmp_path / f"profile{len(contexts)}"
            context = p.chromium.launch_persistent_context(
                str(profile), executable_path=str(executable), args=ARGS, headless=True,
                viewport={"width": width, "height": height})
            context.set_default_timeout(20_000)
            contexts.append(context)
            return context

        yield open_context
        for context in contexts:
            context.close()  # type: ignore[attr-defined]


def log_in(page: object, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/ui/login")  # type: ignore[attr-defined]
    page.get_by_label("Username (e-mail)").fill(username)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(password)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]


def test_owner_sends_a_survey_and_a_subuser_cannot_see_it(
    serve: Callable[[int], Server], phone: Callable[..., PhoneProcess],
    chromium: Callable[..., object], tmp_path: Path,
) -> None:
    far = phone("--press", "1", "--wait", "1", calls=1)
    server = serve(far.port)
    shot = Shots(tmp_path / "screenshots")
    expect = playwright_api.expect
    page = chromium().pages[0]  # type: ignore[attr-defined]

    page.goto(f"{server.url}/ui/login")
    shot(page, "login")
    log_in(page, server.url, USERNAME, PASSWORD)
    expect(page.get_by_role("heading", name="Send")).to_be_visible()
    page.keyboard.press("Tab")  # the first stop is the skip link; Enter moves to the content
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    page.get_by_label("Phone numbers").fill("12506063167")
    page.get_by_label("Text").fill("Adam, web server is down. Press 1 if you are on it.")
    page.get_by_label("Voice", exact=True).select_option("male")
    page.get_by_label("Ask for a key press (response)").check()
    page.get_by_role("button", name="Listen").click()
    expect(page.locator("#listen-status")).to_have_text("Ready: this is what the callee will hear.")
    assert page.evaluate("document.getElementById('player').src").startswith("blob:")
    # the player reads the blob's header after the status line is set: wait for its metadata (readyState 1)
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    assert page.evaluate("document.getElementById('player').duration") > 1.0
    shot(page, "send-tts")
    page.get_by_role("button", name="Send Text to speech").click()
    expect(page.get_by_role("status")).to_contain_text("1 message queued.")

    # the rows refresh themselves while the call is in progress
    expect(page.locator("#rows")).to_contain_text("R = 1", timeout=90_000)
    shot(page, "history")
    page.locator("#rows a").first.click()
    expect(page.locator(".timeline")).to_contain_text("answered")
    expect(page.locator(".timeline")).to_contain_text("key")
    expect(page.locator(".facts")).to_contain_text("Response digit")
    shot(page, "message")

    page.get_by_role("link", name="Reports").click()
    expect(page.locator('#totals dd[data-kind="tts"]')).to_have_text("1")
    expect(page.locator("#answer-rate")).to_contain_text("100% (1 of 1 calls)")
    expect(page.locator("#responses tbody tr").first).to_have_text("11")
    shot(page, "reports")

    for name in ("Balance", "Rates", "Do-not-call", "Groups"):
        page.get_by_role("link", name=name, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        shot(page, name.lower())

    page.get_by_role("link", name="Sub-users").click()
    page.get_by_label("Username (e-mail)").fill(SUB_USER)
    page.get_by_label("Password").fill(SUB_PASSWORD)
    page.get_by_label("Spending limit").fill("2.50")
    page.get_by_role("button", name="Add sub-user").click()
    expect(page.locator("#subusers")).to_contain_text(SUB_USER)
    shot(page, "subusers")
    page.get_by_role("button", name="Log out").click()

    log_in(page, server.url, SUB_USER, SUB_PASSWORD)
    page.get_by_role("link", name="History").click()
    expect(page.locator("#rows")).to_have_text("No messages.")
    assert "R = 1" not in page.content()
    shot(page, "subuser-history")

    narrow = chromium(375, 812).pages[0]  # type: ignore[attr-defined]
    log_in(narrow, server.url, USERNAME, PASSWORD)
    narrow.goto(f"{server.url}/ui/history")
    expect(narrow.locator("#rows")).to_contain_text("R = 1")
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 375
    shot(narrow, "history-375")
    narrow.goto(f"{server.url}/ui/send")
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 375
    shot(narrow, "send-375")
    assert server.stop() == 0
