"""GUI fixtures: the real app over a migrated store (the v1 fixtures: an administrator, two owners with
credit, a sub-user) driven through TestClient, with helpers that log in and post forms like a browser;
and, for the browser tests, Debian's Chromium (installed with apt-get when missing)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.integration.v1.conftest import Api, Login, api, db, pg_cluster, pg_template, sqlite_template

__all__ = ["Api", "Login", "api", "db", "pg_cluster", "pg_template", "sqlite_template"]

CHROMIUM = Path("/usr/bin/chromium")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = CSRF.search(html)
    assert match, "no form with a CSRF token on the page"
    return match.group(1)


@dataclass
class Browser:
    """A TestClient with its own cookie jar, acting as one person's browser."""

    client: TestClient

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.client.get(path, params=params, follow_redirects=True)

    def post(self, form_page: str, action: str, data: dict[str, str] | None = None,
             files: dict[str, tuple[str, bytes, str]] | None = None) -> httpx.Response:
        """Open `form_page`, take its CSRF token and post `data` to `action` (following the redirect)."""
        token = csrf_of(self.get(form_page).text)
        return self.client.post(action, data={"csrf": token, **(data or {})}, files=files,
                                follow_redirects=True)

    def login(self, login: Login) -> httpx.Response:
        answer = self.post("/ui/login", "/ui/login", {"username": login.username, "password": login.password})
        assert answer.status_code == 200, answer.text
        return answer


@pytest.fixture
def browser(api: Api) -> Browser:
    """A second client on the same app (its own cookies), not logged in."""
    return Browser(TestClient(api.client.app))


@pytest.fixture
def owner(api: Api) -> Browser:
    """The owner, logged in."""
    b = Browser(TestClient(api.client.app))
    b.login(api.owner)
    return b


def ensure_chromium() -> Path:
    """/usr/bin/chromium, installed from Debian when missing (the test profile of scripts/bootstrap.sh
    installs it too); the browser tests skip when it cannot be installed (not root, no package mirror)."""
    if CHROMIUM.is_file():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.skip("chromium is missing and there is no apt-get to install it")
    done = subprocess.run([apt, "install", "-y", "chromium"], capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not CHROMIUM.is_file():
        pytest.skip(f"cannot install chromium: {done.stderr[-300:]}")
    return CHROMIUM
