"""TTS benchmarks (run: python -m tests.bench.bench_tts). Prints figures; asserts nothing.

Each installed engine's speed as a multiple of real time (seconds of speech per second of work) and
the latency of a segment-cache hit through render_speech for a typical sentence.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tts import registry
from tts.base import Voice
from tts.cache import SegmentCache
from tts.errors import TTSError
from tts.normalize import normalize
from tts.render import render_speech
from tts.settings import TTSSettings

SENTENCE = (
    "Hello, this is your dentist. Press 1 to confirm your appointment on Tuesday at 9am, or 2 to cancel."
)
REPEATS = 5
CACHE_HITS = 200


def _median(action: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def engine_speed(name: str) -> float | str:
    """Seconds of speech rendered per second of wall time, or why the engine cannot run here."""
    settings = dataclasses.replace(TTSSettings(), engine=name)
    if name == "gtts":
        return "skipped (online engine)"
    try:
        engine = registry.get_engine(settings)
        text = normalize(SENTENCE, "us")
        seconds = engine.synthesize(text, Voice()).seconds
        return seconds / _median(lambda: engine.synthesize(text, Voice()), REPEATS)
    except TTSError as exc:
        return exc.detail


def cache_hit_ms() -> float:
    """Median latency of render_speech when the segment is already cached (espeak, us female)."""
    with tempfile.TemporaryDirectory() as tmp:
        cache = SegmentCache(Path(tmp), 10**8)
        settings = TTSSettings()
        render_speech(SENTENCE, Voice(), settings, cache)
        return 1000 * _median(lambda: render_speech(SENTENCE, Voice(), settings, cache), CACHE_HITS)


def bench_tts() -> dict[str, float | str]:
    """{'<engine>_x_realtime': speed or reason, 'cache_hit_ms': latency}."""
    figures: dict[str, float | str] = {
        f"{name}_x_realtime": engine_speed(name) for name in registry.engine_names()
    }
    figures["cache_hit_ms"] = cache_hit_ms()
    return figures


def main() -> None:
    for name, value in bench_tts().items():
        print(f"{name:24} {value:.3f}" if isinstance(value, float) else f"{name:24} {value}")


if __name__ == "__main__":
    main()
