"""SMS refusals in the GUI (/ui/send/sms): a text past `sms.max_parts` is 511 INVALID TXT at submission,
and a gateway without an SMSC answers 500 ERROR: SMS NOT CONFIGURED; nothing is stored either way."""

from __future__ import annotations

import pytest

from tests.integration.v1.conftest import PHONE, Api
from tests.integration.v1.test_sms_refusals import TOO_LONG, stored, without_smsc
from tests.integration.web.conftest import Browser

pytestmark = pytest.mark.integration


def test_too_many_parts_and_no_smsc(api: Api, owner: Browser, monkeypatch: pytest.MonkeyPatch) -> None:
    before = stored(api)
    page = owner.post("/ui/send?kind=sms", "/ui/send/sms", {"phones": PHONE, "text": TOO_LONG})
    assert "INVALID TXT" in page.text and "7 SMS parts" in page.text, page.text[-2000:]
    without_smsc(api, monkeypatch)
    page = owner.post("/ui/send?kind=sms", "/ui/send/sms", {"phones": PHONE, "text": "hi"})
    assert "ERROR: SMS NOT CONFIGURED" in page.text, page.text[-2000:]
    assert stored(api) == before
