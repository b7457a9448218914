"""Talk-off: no digit in over 10 minutes of TTS speech (English and Spanish, male and female, espeak-ng
and flite) at several levels, nor in music-like signals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from audio.dtmf import detect
from tests.unit.audio.test_dtmf_signals import RATE, at_level, music, render_speech

pytestmark = pytest.mark.slow
Speech = list[tuple[str, npt.NDArray[np.float64]]]


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Speech:
    """Rendered once per session into a temporary directory."""
    cache: Path = tmp_path_factory.mktemp("dtmf-speech")
    return render_speech(cache)


def test_corpus_covers_both_languages_and_genders_for_over_10_minutes(speech: Speech) -> None:
    labels = " ".join(label for label, _ in speech)
    for voice in ("us-female", "us-male", "es-female", "es-male"):
        assert f"espeak-{voice}" in labels
    assert sum(len(x) for _, x in speech) / RATE > 600


@pytest.mark.parametrize("level", [-25.0, -10.0, 0.0, 6.0])
def test_no_digit_in_speech(speech: Speech, level: float) -> None:
    false = {label: detect(at_level(x, level)) for label, x in speech}
    assert {label: hits for label, hits in false.items() if hits} == {}


@pytest.mark.parametrize("level", [-20.0, -5.0])
def test_no_digit_in_music_like_signals(level: float) -> None:
    false = {label: detect(at_level(x, level)) for label, x in music(np.random.default_rng(5), 60.0)}
    assert {label: hits for label, hits in false.items() if hits} == {}
