"""gTTS offline: it must fail fast with 'TTS engine unavailable', and a hung server must not hang us.

Traffic never leaves the machine: gTTS reaches its server through the proxy of the environment,
which these tests point at a closed or a silent port on 127.0.0.1.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tts.base import Voice
from tts.errors import EngineUnavailable
from tts.gtts_engine import GttsEngine
from tts.settings import TTSSettings

pytestmark = pytest.mark.integration


def _proxy_to(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A listening socket that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield int(server.getsockname()[1])


def test_unreachable_server_fails_fast(monkeypatch: pytest.MonkeyPatch, closed_port: int) -> None:
    _proxy_to(monkeypatch, closed_port)
    engine = GttsEngine(TTSSettings(engine="gtts", gtts_timeout_s=10.0))
    started = time.monotonic()
    with pytest.raises(EngineUnavailable, match="TTS engine unavailable"):
        engine.synthesize("Hello there", Voice())
    assert time.monotonic() - started < 5.0  # far below the 10 s timeout: refused, not waited for
    started = time.monotonic()
    with pytest.raises(EngineUnavailable, match="TTS engine unavailable"):  # back-off: no new attempt
        engine.synthesize("Hola", Voice("es", "male"))
    assert time.monotonic() - started < 1.0


def test_silent_server_is_bounded_by_the_timeout(monkeypatch: pytest.MonkeyPatch, silent_server: int) -> None:
    _proxy_to(monkeypatch, silent_server)
    engine = GttsEngine(TTSSettings(engine="gtts", gtts_timeout_s=0.5))
    started = time.monotonic()
    with pytest.raises(EngineUnavailable, match="TTS engine unavailable"):
        engine.synthesize("Hello there, " * 30, Voice())  # several requests: the deadline is for all
    assert time.monotonic() - started < 5.0


def test_gender_does_not_change_the_cache_key() -> None:
    engine = GttsEngine(TTSSettings(engine="gtts"))
    assert engine.cache_key(Voice("us", "male")) == engine.cache_key(Voice("us", "female"))
    assert engine.cache_key(Voice("us")) != engine.cache_key(Voice("es"))
