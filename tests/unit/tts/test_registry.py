"""The engine registry: choice by settings, reuse, plug-ins, and clear errors."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tts import registry
from tts.base import Engine, Speech, Voice
from tts.errors import UnknownEngine
from tts.settings import TTSSettings


class ToneEngine:
    """A pure stand-in engine: a tone whose length follows the text (no library, no process)."""

    name = "tone"

    def __init__(self, settings: TTSSettings) -> None:
        self.rate_wpm = settings.rate_wpm
        self.calls = 0

    def synthesize(self, text: str, voice: Voice) -> Speech:
        self.calls += 1
        t = np.arange(len(text) * 80) / 8000
        return Speech(pcm=(np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16), rate=8000)

    def cache_key(self, voice: Voice) -> str:
        return f"tone|{voice.language}-{voice.gender}|{self.rate_wpm}"


@pytest.fixture
def tone_registered() -> Iterator[None]:
    registry.register_engine("tone", ToneEngine)
    yield
    registry.reset()


def test_unknown_engine_names_the_known_ones() -> None:
    with pytest.raises(UnknownEngine) as caught:
        registry.get_engine(TTSSettings(engine="nope"))
    assert "'nope'" in caught.value.detail and "espeak" in caught.value.detail


@pytest.mark.usefixtures("tone_registered")
def test_plugins_are_chosen_by_settings_and_reused() -> None:
    first = registry.get_engine(TTSSettings(engine="tone"))
    assert isinstance(first, ToneEngine) and isinstance(first, Engine)
    assert registry.get_engine(TTSSettings(engine="tone")) is first
    other = registry.get_engine(TTSSettings(engine="tone", rate_wpm=200))
    assert other is not first and isinstance(other, ToneEngine) and other.rate_wpm == 200


@pytest.mark.usefixtures("tone_registered")
def test_re_registering_drops_created_engines() -> None:
    first = registry.get_engine(TTSSettings(engine="tone"))
    registry.register_engine("tone", ToneEngine)
    assert registry.get_engine(TTSSettings(engine="tone")) is not first
