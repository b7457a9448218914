"""Prompt limits: the prompt cache's size cap with LRU eviction, and prompt.max_seconds checked from the
texts before rendering, while rendering and after assembly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audio import TELEPHONY_RATE
from audio.settings import AssembleSettings
from audio.wav import wav_bytes
from ivr.errors import PromptTooLong
from ivr.prompt import (
    MAX_CHARS_PER_SECOND,
    AudioSegment,
    PromptRenderer,
    PromptSpec,
    TextSegment,
    check_prompt_seconds,
    min_prompt_seconds,
)
from ivr.settings import PromptSettings
from tts.settings import TTSSettings

from .test_prompt_render import spoken

__all__ = ["spoken"]

GAPS = AssembleSettings(gap_ms=400, lead_ms=0, tail_ms=200)


def tone(hz: float, seconds: float) -> bytes:
    t = np.arange(int(seconds * TELEPHONY_RATE)) / TELEPHONY_RATE
    return wav_bytes((8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16))


def renderer(tmp_path: Path, prompt: PromptSettings) -> PromptRenderer:
    return PromptRenderer(tmp_path / "cache", assemble_settings=GAPS, prompt=prompt)


def cached_wavs(tmp_path: Path) -> set[Path]:
    return set((tmp_path / "cache" / "prompts").rglob("*.wav"))


def test_the_prompt_cache_keeps_its_cap_evicting_the_least_recently_used(tmp_path: Path) -> None:
    # Each prompt: 0.5 s of tone + 0.2 s tail = 11,244 bytes of WAV; the cap holds three.
    settings = PromptSettings(max_seconds=2.0, cache_max_bytes=40_000)
    render = renderer(tmp_path, settings)
    prompts = {hz: PromptSpec((AudioSegment(data=tone(hz, 0.5)),)) for hz in (400, 500, 600, 700, 800)}
    first = {hz: render.render(prompts[hz]) for hz in (400, 500, 600)}
    assert render.render(prompts[400]).cached  # 400 is now the most recently used
    render.render(prompts[700])
    kept = cached_wavs(tmp_path)
    assert first[400].path in kept and first[500].path not in kept
    assert render.prompt_cache.total_bytes() <= settings.cache_max_bytes
    render.render(prompts[800])
    assert render.prompt_cache.total_bytes() <= settings.cache_max_bytes
    assert len(cached_wavs(tmp_path)) <= 3
    again = render.render(prompts[500])  # evicted: rendered again, not lost
    assert not again.cached and again.path.exists()


def test_a_prompt_whose_texts_are_too_long_is_refused_before_rendering(
    tmp_path: Path, spoken: list[str]
) -> None:
    """The issue's case: 32 texts of 2,000 characters (a 64-minute prompt)."""
    spec = PromptSpec(tuple(TextSegment("Press one to confirm your appointment. " * 51) for _ in range(32)))
    with pytest.raises(PromptTooLong, match="at least") as caught:
        renderer(tmp_path, PromptSettings()).render(spec)
    assert (caught.value.code, caught.value.status_text) == (500, "ERROR: PROMPT TOO LONG")
    assert spoken == [] and cached_wavs(tmp_path) == set()


def test_audio_over_the_limit_is_refused_while_rendering(tmp_path: Path) -> None:
    spec = PromptSpec(tuple(AudioSegment(data=tone(440 + i, 0.8)) for i in range(3)))
    with pytest.raises(PromptTooLong, match="lasts"):
        renderer(tmp_path, PromptSettings(max_seconds=1.5, cache_max_bytes=10**6)).render(spec)
    assert cached_wavs(tmp_path) == set()


def test_the_assembled_prompt_counts_its_gaps(tmp_path: Path) -> None:
    spec = PromptSpec((AudioSegment(data=tone(440, 0.7)), AudioSegment(data=tone(550, 0.7))))
    # 1.4 s of audio passes 1.5 s only with the 0.4 s gap and the 0.2 s tail.
    with pytest.raises(PromptTooLong):
        renderer(tmp_path, PromptSettings(max_seconds=1.5, cache_max_bytes=10**6)).render(spec)
    accepted = renderer(tmp_path, PromptSettings(max_seconds=2.0, cache_max_bytes=10**6)).render(spec)
    assert accepted.duration_s == 2.0


def test_the_estimate_is_a_lower_bound_of_real_speech(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[3] / "samples" / "prompts" / "dentist_us.txt").read_text()
    spec = PromptSpec((TextSegment(text.strip()),))
    rendered = renderer(tmp_path, PromptSettings()).render(spec)
    estimate = min_prompt_seconds(spec, GAPS, TTSSettings())
    assert estimate < rendered.duration_s
    assert len(text.strip()) / rendered.duration_s < MAX_CHARS_PER_SECOND / 1.5  # room for faster voices
    fast = TTSSettings(rate_wpm=320)  # twice as fast: the bound halves
    assert min_prompt_seconds(spec, GAPS, fast) == pytest.approx(
        (estimate - 0.2) / 2 + 0.2)
    fast_render = PromptRenderer(tmp_path / "cache", assemble_settings=GAPS, tts=fast).render(spec)
    assert min_prompt_seconds(spec, GAPS, fast) < fast_render.duration_s


def test_check_prompt_seconds_and_settings() -> None:
    check_prompt_seconds(600.0, PromptSettings())
    with pytest.raises(PromptTooLong):
        check_prompt_seconds(600.1, PromptSettings())
    with pytest.raises(ValueError, match="longest prompt"):
        PromptSettings(max_seconds=600, cache_max_bytes=1_000_000)
    with pytest.raises(ValueError):
        PromptSettings(max_seconds=0)

