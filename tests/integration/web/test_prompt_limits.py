"""Prompt limits at the edges: a v1 vtts submission and a Listen of the same 64-minute prompt (32 texts
of 2,000 characters) are refused with ERROR: PROMPT TOO LONG before anything is rendered or queued, and
Listen is limited per user."""

from __future__ import annotations

import pytest

from api.fronts.web.routes_send import ListenLimits
from tests.integration.v1.conftest import Api

from .conftest import Browser

pytestmark = pytest.mark.integration

LONG_TEXT = "Press one to confirm your appointment. " * 51  # 1,989 characters
PHONE = "12125551234"


def test_v1_vtts_over_the_prompt_limit_is_refused(api: Api) -> None:
    body = {"type": "vtts", "to": [PHONE], "segments": [LONG_TEXT] * 32}
    r = api.client.post("/v1/messages", json=body, headers=api.owner.headers)
    answer = (r.status_code, r.json()["code"], r.json()["status"])
    assert answer == (422, 500, "ERROR: PROMPT TOO LONG"), r.text
    assert api.client.get("/v1/messages", headers=api.owner.headers).json()["items"] == []
    body["segments"] = [LONG_TEXT] * 2
    short = api.client.post("/v1/messages", json=body, headers=api.owner.headers)
    assert short.status_code == 202, short.text


def test_listen_over_the_prompt_limit_is_refused_without_rendering(owner: Browser, api: Api) -> None:
    answer = owner.get("/ui/send/listen", kind="vtts", segments="\n".join([LONG_TEXT] * 32))
    assert answer.status_code != 200 and "PROMPT TOO LONG" in answer.text, answer.text
    assert not list((api.data_dir / "cache" / "prompts").rglob("*.wav"))


def test_listen_is_limited_per_user(owner: Browser, browser: Browser, api: Api) -> None:
    api.client.app.state.listen_limits = ListenLimits(per_minute=0.01, burst=2)  # type: ignore[attr-defined]
    for _ in range(2):
        assert owner.get("/ui/send/listen", kind="tts", text="Press one").status_code == 200
    refused = owner.get("/ui/send/listen", kind="tts", text="Press one")
    assert refused.status_code != 200 and "TOO MANY LISTEN REQUESTS" in refused.text, refused.text
    browser.login(api.other)  # another user has a bucket of its own
    assert browser.get("/ui/send/listen", kind="tts", text="Press one").status_code == 200
