"""The keyword answers' settings: defaults, the brand's fallbacks, templates checked at load time."""

from __future__ import annotations

import os

import pytest

from api.core.settings import Settings, SettingsError, SmsSettings, load_settings


def test_defaults_answer_every_keyword_with_the_brand_and_contact() -> None:
    service = SmsSettings(brand="Acme Clinic", help_contact="help@acme.example")
    replies = service.replies("node1.internal")
    assert replies.help == ("Acme Clinic: reminders and alerts. Reply STOP to unsubscribe. "
                            "Help: help@acme.example")
    assert replies.stop == ("Acme Clinic: you are unsubscribed and will receive no more messages. "
                            "Reply START to resubscribe.")
    assert replies.start == "Acme Clinic: you are subscribed again. Reply STOP to unsubscribe, HELP for help."


def test_the_brand_falls_back_to_orgserver_then_the_host() -> None:
    assert SmsSettings(orgserver="sms.acme.example").replies("node1").stop.startswith("sms.acme.example: ")
    assert SmsSettings().replies("node1.internal").stop.startswith("node1.internal: ")
    assert SmsSettings().replies("node1").help == "node1: reminders and alerts. Reply STOP to unsubscribe."


def test_own_texts_and_no_answer() -> None:
    service = SmsSettings(brand="Acme", help_text="{brand} alerts. Call {contact}.", help_contact="611",
                          stop_reply="", start_reply="Welcome back to {brand}.")
    replies = service.replies("h")
    assert (replies.help, replies.stop) == ("Acme alerts. Call 611.", "")
    assert replies.start == "Welcome back to Acme."


@pytest.fixture(autouse=True)
def no_ivrgate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("IVRGATE_")]:
        monkeypatch.delenv(name)


def test_a_bad_template_is_refused_when_the_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"stop_reply: .*\{name\}"):
        SmsSettings(stop_reply="{name}, you are out")
    monkeypatch.setenv("IVRGATE_SMS_SERVICE__HELP_TEXT", "Help: {contact")
    with pytest.raises(SettingsError, match="sms_service"):
        load_settings()
    monkeypatch.setenv("IVRGATE_SMS_SERVICE__HELP_TEXT", "{brand} help: {contact}")
    monkeypatch.setenv("IVRGATE_SMS_SERVICE__BRAND", "Acme")
    monkeypatch.setenv("IVRGATE_SMS_SERVICE__HELP_CONTACT", "611")
    assert load_settings().sms_service.replies("h").help == "Acme help: 611"
    monkeypatch.delenv("IVRGATE_SMS_SERVICE__HELP_CONTACT")
    assert Settings().sms_service.replies("h").help == ""  # its only sentence names the missing contact
