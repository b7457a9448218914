"""flite and festival, the Debian engines: real synthesis when installed, clear errors when not."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tts.base import Voice
from tts.errors import EngineUnavailable, UnsupportedVoice
from tts.festival import FestivalEngine
from tts.flite import FliteEngine
from tts.settings import TTSSettings

pytestmark = pytest.mark.integration

TEXT = "Hello, this is your dentist. Press one to confirm; it's safe: $(rm -rf /) `id` \"quoted\"."
needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="Debian package flite not installed")
needs_festival = pytest.mark.skipif(
    shutil.which("text2wave") is None, reason="Debian package festival not installed"
)


def _audible(pcm: np.ndarray) -> bool:
    return bool(np.sqrt(np.mean((pcm.astype(np.float64) / 32768) ** 2)) > 0.01)


@needs_flite
@pytest.mark.parametrize("gender", ["female", "male"])
def test_flite_speaks_english(gender: str) -> None:
    engine = FliteEngine(TTSSettings())
    speech = engine.synthesize(TEXT, Voice("us", gender))  # type: ignore[arg-type]
    assert speech.rate == 16000 and 3 < speech.seconds < 15 and _audible(speech.pcm)
    assert engine.cache_key(Voice("us", gender)).startswith("flite-")  # type: ignore[arg-type]


@needs_flite
def test_flite_rate_setting_stretches_speech() -> None:
    slow = FliteEngine(TTSSettings(rate_wpm=100)).synthesize("One two three four five.", Voice())
    fast = FliteEngine(TTSSettings(rate_wpm=240)).synthesize("One two three four five.", Voice())
    assert fast.seconds < 0.6 * slow.seconds


@needs_flite
def test_flite_refuses_spanish_clearly() -> None:
    with pytest.raises(UnsupportedVoice, match="English only"):
        FliteEngine(TTSSettings()).synthesize("hola", Voice("es", "female"))


def test_absent_flite_names_its_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineUnavailable, match="apt-get install flite"):
        FliteEngine(TTSSettings())


def test_absent_festival_names_its_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineUnavailable, match="apt-get install festival"):
        FestivalEngine(TTSSettings())


@needs_festival
def test_festival_speaks_english_with_each_installed_voice() -> None:
    engine = FestivalEngine(TTSSettings())
    spoken = 0
    for gender in ("female", "male"):
        try:
            speech = engine.synthesize(TEXT, Voice("us", gender))  # type: ignore[arg-type]
        except UnsupportedVoice:
            continue
        assert speech.rate in (8000, 16000, 22050, 32000, 44100, 48000)
        assert 3 < speech.seconds < 15 and _audible(speech.pcm)
        spoken += 1
    assert spoken >= 1


@needs_festival
def test_festival_without_spanish_voice_says_so() -> None:
    engine = FestivalEngine(TTSSettings())
    if "el_diphone" in engine._installed:
        pytest.skip("a Spanish festival voice is installed")
    with pytest.raises(UnsupportedVoice, match="Spanish"):
        engine.synthesize("hola", Voice("es", "male"))
