"""The login throttle on the SMTP gateway, with smtplib: wrong passwords are refused 550, and once the
username is locked every mail for it (the right password too) gets a temporary 451 4.7.1 with the delay,
without an argon2 run."""

from __future__ import annotations

from email.mime.text import MIMEText

import pytest

from api.core.settings import Settings
from api.core.throttle import ThrottleSettings
from tests.integration.smtp.conftest import PASSWORD, USERNAME, Store, messages, serving, smtp_settings

pytestmark = pytest.mark.integration
LOCK_S = 600.0  # long enough that a loaded machine cannot see the lock end mid-test


def mail(password: str) -> bytes:
    message = MIMEText(f"username:{USERNAME} password:{password} phone:12501238585 sms:Hello")
    message["From"], message["To"], message["Subject"] = USERNAME, "gateway@localhost", "job"
    return message.as_bytes()


def test_smtp_logins_are_throttled(store: Store) -> None:
    throttle = ThrottleSettings(first_lock_s=LOCK_S, max_lock_s=LOCK_S)
    settings = Settings(data_dir=store.data_dir, smtp=smtp_settings(), login_throttle=throttle)
    with serving(settings, store.db) as server:
        for n in range(throttle.user_free_failures):
            code, text = server.send(mail(f"guess-{n}"))
            assert (code, text) == (550, "5.7.8 505 USER NOT FOUND OR WRONG PASSWORD")
        runs = server.gateway.credentials.argon2_runs
        code, text = server.send(mail(PASSWORD))
        assert code == 451 and text.startswith("4.7.1 505 USER NOT FOUND OR WRONG PASSWORD (too many")
        assert "try again in 600 s" in text
        assert server.gateway.credentials.argon2_runs == runs
    assert messages(store) == []
