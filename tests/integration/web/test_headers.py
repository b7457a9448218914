"""Security headers: the GUI forbids framing and allows only its own scripts, styles and media, and the
APIs (v1, legacy, /healthz) answer with a CSP that renders nothing, on answers and refusals alike."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.fronts.headers import GUI_CSP
from tests.integration.v1.conftest import Api
from tests.integration.web.conftest import Browser

pytestmark = pytest.mark.integration
TEMPLATES = Path(__file__).resolve().parents[3] / "api" / "web" / "templates"


def test_gui_pages_forbid_framing_and_foreign_code(owner: Browser) -> None:
    for path in ("/ui/login", "/ui/send", "/ui/history", "/ui/static/app.js", "/ui/nowhere"):
        r = owner.client.get(path)
        assert r.headers["Content-Security-Policy"] == GUI_CSP, path
        assert "frame-ancestors 'none'" in GUI_CSP and r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "same-origin"


def test_the_gui_needs_no_inline_script_or_style() -> None:
    """The CSP has no 'unsafe-inline': the templates must hold no inline script, style or handler."""
    inline = re.compile(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=|javascript:", re.I)
    for template in TEMPLATES.glob("*.html"):
        assert not inline.search(template.read_text()), template.name


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/me"), ("GET", "/v1/groups/1"),
                                              ("GET", "/balance"), ("POST", "/matrix.json"),
                                              ("GET", "/healthz")])
def test_api_answers_carry_a_render_nothing_policy(api: Api, method: str, path: str) -> None:
    r = api.client.request(method, path, headers=api.owner.headers)
    assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["Referrer-Policy"] == "no-referrer"


def test_a_refused_oversized_body_has_them_too(api: Api) -> None:
    r = api.client.post("/v1/groups", headers={**api.owner.headers, "Content-Length": str(10**9)},
                        content=b"{}")
    assert r.json()["status"] == "ERROR: REQUEST TOO LARGE"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
