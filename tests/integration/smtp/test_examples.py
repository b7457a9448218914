"""The seed's four example mails (samples/mail/*.eml) sent with smtplib to the real SMTP gateway: the
messages in the store are exactly what the HTTP API would have queued, and the TTS ones are dialled to
the built-in test phone."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable
from pathlib import Path

import pytest

from api.core.settings import Settings
from ivr.settings import FetchSettings
from store import blobs
from tests.integration.fetch.server import WAV, serve
from tests.integration.smtp.conftest import (
    BALANCE,
    GATEWAY_ADDRESS,
    SAMPLES,
    USERNAME,
    PhoneProcess,
    Store,
    messages,
    serving,
    smtp_settings,
    worker_settings,
)

pytestmark = pytest.mark.integration
ACCEPTED = re.compile(r"^2\.0\.0 200 OK ID: ([0-9a-f]{32})$")
SEED_URL = "http://www.myweb.ca/sounds/welcome.wav"


def accepted_id(code: int, text: str) -> str:
    assert code == 250, (code, text)
    match = ACCEPTED.match(text)
    assert match, text
    return match.group(1)


def test_sms_example_is_queued(store: Store, tmp_path: Path) -> None:
    settings = Settings(data_dir=store.data_dir, smtp=smtp_settings())
    with serving(settings, store.db) as running:
        # the stock way: smtplib.sendmail with the sample file as it is
        with smtplib.SMTP("127.0.0.1", running.port, timeout=30) as client:
            refused = client.sendmail(USERNAME, [GATEWAY_ADDRESS], (SAMPLES / "sms.eml").read_bytes())
        assert refused == {}
    [message] = messages(store)
    assert (message.kind, message.status_code, message.status_text) == ("sms", 100, "Queued")
    assert message.phone == "+12501238585" and message.callerid == "+13451238585"
    assert message.body == "Hello Adam, this is a test, please ignore."
    assert message.settings == {"tts_fallback": False} and message.parts == 1
    assert store.balance() == BALANCE - message.reserved


def test_reply_carries_the_stored_message_id(store: Store) -> None:
    settings = Settings(data_dir=store.data_dir, smtp=smtp_settings())
    with serving(settings, store.db) as running:
        message_id = accepted_id(*running.send((SAMPLES / "sms.eml").read_bytes()))
    assert [m.id for m in messages(store)] == [message_id]


def test_voiceurl_example_is_fetched_and_queued(store: Store) -> None:
    mail = (SAMPLES / "voiceurl.eml").read_bytes()
    with serve() as web:
        url = web.url("/tone.wav")
        settings = Settings(data_dir=store.data_dir, smtp=smtp_settings(),
                            fetch=FetchSettings(allowed_networks=("127.0.0.1/32",)))
        with serving(settings, store.db) as running:
            message_id = accepted_id(*running.send(mail.replace(SEED_URL.encode(), url.encode())))
        assert web.requests == ["/tone.wav"]
    [message] = messages(store)
    assert message.id == message_id and message.kind == "voice" and message.status_code == 100
    assert message.phone == "+16301238534" and message.callerid == "" and message.body == url
    digest = blobs.sha256_hex(WAV)
    assert message.prompt_blob == digest
    assert message.settings == {"blob": digest, "repeat": 0, "response": False}


def test_voiceurl_refused_by_the_fetcher_is_answered(store: Store) -> None:
    mail = (SAMPLES / "voiceurl.eml").read_bytes()
    with serve() as web:
        settings = Settings(data_dir=store.data_dir, smtp=smtp_settings())  # private addresses refused
        with serving(settings, store.db) as running:
            code, text = running.send(mail.replace(SEED_URL.encode(), web.url("/tone.wav").encode()))
        assert web.requests == []
    assert code == 550 and text.startswith("5.6.0 500 ERROR: VOICE URL REFUSED"), text
    assert messages(store) == []


@pytest.mark.slow  # an engine pool and two calls to the test phone (~15 s)
def test_tts_examples_are_dialled(store: Store, phone: Callable[..., PhoneProcess]) -> None:
    far = phone("--press", "1", "--wait", "0.5", calls=2)
    settings = worker_settings(store.data_dir, far.port, smtp=smtp_settings())
    with serving(settings, store.db, with_worker=True) as running:
        plain = accepted_id(*running.send((SAMPLES / "tts.eml").read_bytes()))
        asked = accepted_id(*running.send((SAMPLES / "tts_response.eml").read_bytes()))
        first = store.wait_finished(plain, timeout=90)
        second = store.wait_finished(asked, timeout=90)
    assert first.kind == second.kind == "tts"
    assert first.settings == {"text": "Hello John, This is Adam, please call me back.", "language": "us",
                              "gender": "female", "repeat": 0, "response": False}
    assert second.settings["response"] is True and second.body.startswith("Hello, this is your dentist")
    assert first.phone == second.phone == "+16301238534" and first.callerid == "+13451238585"
    assert re.fullmatch(r"Voice call answered, duration \d+ seconds\.", first.status_text), first.status_text
    assert re.fullmatch(r"Voice call answered, duration \d+ seconds\. R = 1", second.status_text)
    assert second.response == "1"
    calls = far.results(timeout=30)
    assert len(calls) == 2 and all(call["pressed"] == "1" for call in calls)
