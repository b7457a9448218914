"""The SMS part cap (`sms.max_parts`, 6 by default) applied at submission on the legacy routes: a text
that would need more parts is refused at once with 511 INVALID TXT (nothing stored, nothing reserved),
instead of being accepted and failing later in the sender; at the cap it is accepted and reserved per
part."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from store.db import Database
from store.models import Message
from tests.integration.api.conftest import account, counts, legacy_json, one

pytestmark = pytest.mark.integration
PHONE = "12506063167"
AT_THE_CAP = {"gsm": "a" * 918, "ucs2": "你" * 402, "gsm-escapes": "€" * 456}
"""Six parts exactly: 6 x 153 septets, 6 x 67 UTF-16 units, 6 x 76 two-septet characters (an escape and
its character never straddle two parts, so a part holds 152 septets of them)."""
PAST_THE_CAP = {"gsm": "a" * 919, "ucs2": "你" * 403, "gsm-escapes": "€" * 457}


@pytest.mark.parametrize("alphabet", PAST_THE_CAP)
def test_past_the_cap_is_refused_at_submission(client: TestClient, db: Database, alphabet: str) -> None:
    before = counts(db)
    answer = one(client.post("/matrix", data=account(phone=PHONE, txt=PAST_THE_CAP[alphabet])).text)
    assert (answer["STATUSCODE"], answer["STATUSTXT"]) == ("511", "INVALID TXT")
    query = account(phone=PHONE, txt=PAST_THE_CAP[alphabet])
    as_json = legacy_json(client.get("/matrix.json", params=query).text)
    assert (as_json["STATUSCODE"], as_json["STATUSTXT"]) == (511, "INVALID TXT")
    assert counts(db) == before


@pytest.mark.parametrize("alphabet", AT_THE_CAP)
def test_at_the_cap_is_accepted_for_six_parts(client: TestClient, db: Database, alphabet: str) -> None:
    answer = one(client.post("/matrix", data=account(phone=PHONE, txt=AT_THE_CAP[alphabet])).text)
    assert answer["STATUSCODE"] == "200", answer
    with db.read() as session:
        message = session.get(Message, answer["ID"])
        assert message is not None and message.parts == 6
