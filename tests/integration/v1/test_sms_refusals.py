"""SMS refusals on v1 (/v1/messages; the GUI's are in tests/integration/web): a text past
`sms.max_parts` is 511 INVALID TXT at submission, and a gateway without an SMSC answers 500 ERROR: SMS
NOT CONFIGURED; nothing is stored or reserved either way."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from sms.smpp import SmppSettings
from store.models import LedgerEntry, Message
from tests.integration.v1.conftest import PHONE, Api

pytestmark = pytest.mark.integration
TOO_LONG = "a" * 919
"""Seven GSM-7 parts; the cap is six."""


def stored(api: Api) -> tuple[int, int]:
    with api.db.read() as session:
        return (int(session.scalar(select(func.count()).select_from(Message)) or 0),
                int(session.scalar(select(func.count()).select_from(LedgerEntry)) or 0))


def without_smsc(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The running gateway's settings as a deployment without an SMSC has them."""
    unset = api.gateway.settings.model_copy(update={"sms": SmppSettings()})
    monkeypatch.setattr(api.gateway, "settings", unset)


def test_v1_too_many_parts_is_511(api: Api) -> None:
    before = stored(api)
    r = api.client.post("/v1/messages", json={"type": "sms", "to": [PHONE], "text": TOO_LONG},
                        headers=api.owner.headers)
    assert r.status_code == 422 and (r.json()["code"], r.json()["status"]) == (511, "INVALID TXT"), r.text
    assert "7 SMS parts" in r.json()["detail"]
    assert stored(api) == before
    ok = api.client.post("/v1/messages", json={"type": "sms", "to": [PHONE], "text": TOO_LONG[:-1]},
                         headers=api.owner.headers)
    assert ok.status_code == 202, ok.text


def test_v1_without_an_smsc_is_503(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    without_smsc(api, monkeypatch)
    before = stored(api)
    r = api.client.post("/v1/messages", json={"type": "sms", "to": [PHONE], "text": "hi"},
                        headers=api.owner.headers)
    assert r.status_code == 503, r.text
    assert (r.json()["code"], r.json()["status"]) == (500, "ERROR: SMS NOT CONFIGURED")
    assert stored(api) == before
    tts = api.client.post("/v1/messages", json={"type": "tts", "to": [PHONE], "text": "hi"},
                          headers=api.owner.headers)
    assert tts.status_code == 202  # calls do not need an SMSC
