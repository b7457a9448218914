"""Shared fixtures of the audio tests: a fresh set of audio files, written once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tests.fixtures.make_fixtures import make_fixtures


@pytest.fixture(scope="session")
def audio_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every fixture of tests/fixtures/make_fixtures.py, generated into a temporary directory."""
    return make_fixtures(tmp_path_factory.mktemp("audio-fixtures"))


def dominant_hz(samples: npt.NDArray[np.floating], rate: int) -> float:
    """Frequency of the strongest spectral peak of a mono signal."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.argmax(spectrum) * rate / samples.size)
