"""assemble(): lead, segments with gaps, tail; short fades so no segment edge clicks."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from audio.assemble import assemble, fade_edges
from audio.settings import AssembleSettings

LOUD = np.full(800, 20000, dtype=np.int16)  # a DC block: the worst case for an edge click


def tone(n: int = 1600) -> npt.NDArray[np.int16]:
    wave = 16000 * np.sin(2 * np.pi * 440 * np.arange(n) / 8000 + 0.7)
    pcm: npt.NDArray[np.int16] = np.rint(wave).astype(np.int16)
    return pcm


def test_layout_and_length() -> None:
    settings = AssembleSettings(gap_ms=250, lead_ms=100, tail_ms=50, fade_ms=4)
    first, second = tone(1600), tone(800)
    out = assemble([first, second], settings)
    assert out.dtype == np.int16
    assert out.size == 800 + 1600 + 2000 + 800 + 400
    assert not out[:800].any()
    assert not out[800 + 1600 : 800 + 1600 + 2000].any()
    assert not out[-400:].any()
    np.testing.assert_array_equal(out[800 + 32 : 800 + 1600 - 32], first[32:-32])


def test_default_settings() -> None:
    defaults = AssembleSettings()
    out = assemble([tone(), tone()])
    expected = 2 * 1600 + defaults.gap_ms * 8 + defaults.lead_ms * 8 + defaults.tail_ms * 8
    assert out.size == expected


def test_edges_are_faded_without_clicks() -> None:
    out = assemble([LOUD, LOUD], AssembleSettings(gap_ms=100, lead_ms=10, tail_ms=10, fade_ms=4))
    steps = np.abs(np.diff(out.astype(np.int32)))
    # Unfaded, the block would jump 20000 at each edge; a 32-sample raised cosine moves ~1000 a sample.
    assert steps.max() < 1100
    assert out[80] != 0 and abs(int(out[80])) < 100


def test_fade_keeps_the_middle_and_handles_short_segments() -> None:
    faded = fade_edges(LOUD, 32)
    np.testing.assert_array_equal(faded[32:-32], LOUD[32:-32])
    assert faded[0] < faded[16] < faded[31] < 20000
    assert fade_edges(LOUD[:10], 32).max() < 20000
    assert fade_edges(LOUD[:1], 32).tolist() == [20000]
    assert fade_edges(LOUD, 0).tolist() == LOUD.tolist()


def test_empty_segments_add_no_gap() -> None:
    settings = AssembleSettings(gap_ms=100, lead_ms=0, tail_ms=0)
    empty = np.zeros(0, dtype=np.int16)
    assert assemble([empty, tone(800), empty, tone(800)], settings).size == 800 + 800 + 800
    assert assemble([], AssembleSettings(lead_ms=10, tail_ms=20)).tolist() == [0] * 240


def test_refuses_other_sample_types() -> None:
    with pytest.raises(TypeError):
        assemble([np.zeros(10, dtype=np.float32)])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        assemble([np.zeros((10, 2), dtype=np.int16)])
    with pytest.raises(ValueError):
        assemble([tone()], AssembleSettings(gap_ms=-1))
