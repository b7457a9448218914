"""SMS refusals through the SMTP gateway: the seed's sms mail with a text past `sms.max_parts` is
answered 550 with 511 INVALID TXT, and on a gateway without an SMSC 550 with 500 ERROR: SMS NOT
CONFIGURED; nothing is stored either way."""

from __future__ import annotations

import pytest

from api.core.settings import Settings
from tests.integration.smtp.conftest import SAMPLES, Store, messages, serving, smtp_settings

pytestmark = pytest.mark.integration
SEED_TEXT = b"sms:Hello Adam, this is a test, please ignore."


def with_text(length: int) -> bytes:
    """The seed's sms mail with `length` characters of text, quoted-printable with soft line breaks (a
    mail line may not pass 1,000 octets; the gateway unwraps them)."""
    mail = (SAMPLES / "sms.eml").read_bytes().replace(b"Content-Transfer-Encoding: 8bit",
                                                      b"Content-Transfer-Encoding: quoted-printable")
    assert SEED_TEXT in mail
    text = b"a" * length
    wrapped = b"=\r\n".join(text[i:i + 70] for i in range(0, length, 70))
    return mail.replace(SEED_TEXT, b"sms:=\r\n" + wrapped)


def test_too_many_parts_is_refused(store: Store) -> None:
    with serving(Settings(data_dir=store.data_dir, smtp=smtp_settings()), store.db) as running:
        code, text = running.send(with_text(919))
        assert code == 550 and "511 INVALID TXT" in text, (code, text)
        assert running.send(with_text(918))[0] == 250
    assert [m.parts for m in messages(store)] == [6]


def test_no_smsc_is_refused(store: Store) -> None:
    settings = Settings(data_dir=store.data_dir, smtp=smtp_settings())
    with serving(settings, store.db, smsc=False) as running:
        code, text = running.send((SAMPLES / "sms.eml").read_bytes())
    assert code == 550 and "500 ERROR: SMS NOT CONFIGURED" in text, (code, text)
    assert messages(store) == []
