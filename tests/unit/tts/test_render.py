"""render_speech: validation, normalisation and the segment cache around an engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tts import registry
from tts.base import Speech, Voice
from tts.cache import SegmentCache
from tts.errors import InvalidText
from tts.render import cache_from_settings, render_speech, speech_from_wav, speech_to_wav
from tts.settings import TTSSettings

from .test_registry import ToneEngine

SETTINGS = TTSSettings(engine="tone", max_text_chars=200)


@pytest.fixture
def engine() -> Iterator[ToneEngine]:
    registry.register_engine("tone", ToneEngine)
    created = registry.get_engine(SETTINGS)
    assert isinstance(created, ToneEngine)
    yield created
    registry.reset()


def test_wav_round_trip() -> None:
    speech = Speech(pcm=np.array([0, 1, -1, 32767, -32768], dtype=np.int16), rate=22050)
    back = speech_from_wav(speech_to_wav(speech))
    assert back.rate == 22050 and back.pcm.dtype == np.int16
    assert np.array_equal(back.pcm, speech.pcm)


@pytest.mark.parametrize("data", [b"", b"RIFF", b"not a wav at all" * 10])
def test_unreadable_wav_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        speech_from_wav(data)


def test_text_is_validated_before_the_engine_runs(engine: ToneEngine) -> None:
    with pytest.raises(InvalidText):
        render_speech("x" * 201, Voice(), SETTINGS)
    with pytest.raises(InvalidText):
        render_speech(" ", Voice(), SETTINGS)
    assert engine.calls == 0


def test_engine_receives_normalised_text(engine: ToneEngine) -> None:
    speech = render_speech("$5", Voice(), SETTINGS)
    assert len(speech.pcm) == len("five dollars") * 80


def test_second_render_is_a_cache_hit(engine: ToneEngine, tmp_path: Path) -> None:
    cache = SegmentCache(tmp_path, 10**6)
    first = render_speech("Press 1 at 9am today", Voice(), SETTINGS, cache)
    second = render_speech("Press 1 at 9 a.m. today", Voice(), SETTINGS, cache)  # same spoken text
    assert engine.calls == 1
    assert second.rate == first.rate and np.array_equal(second.pcm, first.pcm)
    render_speech("Press 1 at 9am today", Voice(gender="male"), SETTINGS, cache)
    assert engine.calls == 2


def test_corrupt_entry_is_rendered_again(engine: ToneEngine, tmp_path: Path) -> None:
    cache = SegmentCache(tmp_path, 10**6)
    render_speech("hello", Voice(), SETTINGS, cache)
    key = cache.key("tone", engine.cache_key(Voice()), "hello")
    cache.path(key).write_bytes(b"garbage")
    again = render_speech("hello", Voice(), SETTINGS, cache)
    assert engine.calls == 2 and len(again.pcm) == 5 * 80
    assert speech_from_wav(cache.get(key) or b"").rate == 8000  # and the entry was repaired


def test_segment_too_large_for_the_cache_is_still_returned(engine: ToneEngine, tmp_path: Path) -> None:
    cache = SegmentCache(tmp_path, 100)
    speech = render_speech("a long enough sentence", Voice(), SETTINGS, cache)
    assert len(speech.pcm) > 0 and cache.total_bytes() == 0


def test_cache_from_settings(tmp_path: Path) -> None:
    assert cache_from_settings(TTSSettings()) is None
    cache = cache_from_settings(TTSSettings(cache_dir=tmp_path / "c", cache_max_bytes=1234))
    assert cache is not None and cache.max_bytes == 1234 and (tmp_path / "c").is_dir()
