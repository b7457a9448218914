"""The registry and render_speech with the real engines installed here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tts import registry
from tts.base import Voice
from tts.cache import SegmentCache
from tts.render import render_speech
from tts.settings import TTSSettings

pytestmark = pytest.mark.integration


def test_available_engines_reports_each_engine() -> None:
    available = registry.available_engines()
    assert available["espeak"] is True
    assert available["gtts"] is True  # installed; not contacted
    assert set(available) >= {"espeak", "flite", "festival", "gtts"}
    assert all(value is True or (isinstance(value, str) and value) for value in available.values())


def test_default_engine_is_espeak() -> None:
    assert registry.get_engine(TTSSettings()).name == "espeak"


@pytest.mark.parametrize("language", ["us", "es"])
def test_render_with_cache_stores_and_reuses_wav(tmp_path: Path, language: str) -> None:
    cache = SegmentCache(tmp_path, 10**7)
    voice = Voice(language, "male")  # type: ignore[arg-type]
    first = render_speech("Your balance is $12.50, due 11/24/2026.", voice, TTSSettings(), cache)
    assert first.seconds > 1 and cache.total_bytes() > 0
    second = render_speech("Your balance is $12.50, due 11/24/2026.", voice, TTSSettings(), cache)
    assert second.rate == first.rate and np.array_equal(second.pcm, first.pcm)
    entries = [p for p in tmp_path.rglob("*.wav")]
    assert len(entries) == 1 and entries[0].read_bytes()[:4] == b"RIFF"
