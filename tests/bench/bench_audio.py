"""Audio benchmarks (run: python -m tests.bench.bench_audio). Prints figures; asserts nothing."""

from __future__ import annotations

import io
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile

from audio.decode import decode, decode_mono, decode_to_telephony
from audio.settings import DecodeLimits
from audio.telephony import to_telephony
from tests.fixtures.make_fixtures import flac_bomb

SECONDS = 60.0
RATE = 44100
REPEATS = 9


def _music_like_mp3(seconds: float = SECONDS, rate: int = RATE) -> bytes:
    """A stereo MP3 with a chord, vibrato and noise, so the encoder and decoder do real work."""
    t = np.arange(round(seconds * rate)) / rate
    rng = np.random.default_rng(1)
    chord = sum(0.15 * np.sin(2 * np.pi * hz * t + 3 * np.sin(2 * np.pi * 5 * t)) for hz in (220, 277, 330))
    left = chord + 0.02 * rng.standard_normal(t.size)
    right = np.roll(chord, 300) + 0.02 * rng.standard_normal(t.size)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.stack([left, right], axis=1), rate, format="MP3", subtype="MPEG_LAYER_III")
    return buffer.getvalue()


def _timings(action: Callable[[], object], repeats: int = REPEATS) -> list[float]:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return timings


def bench_mp3_to_telephony() -> dict[str, float]:
    """60 s of 44.1 kHz stereo MP3 -> 8 kHz int16 telephony audio, as multiples of real time."""
    data = _music_like_mp3()
    decoded = decode(data)
    total = _timings(lambda: decode_to_telephony(data))
    decode_only = _timings(lambda: decode(data))
    convert_only = _timings(lambda: to_telephony(decoded.samples, decoded.rate))
    mono_only = _timings(lambda: decode_mono(data))
    return {
        "audio_seconds": SECONDS,
        "mp3_bytes": float(len(data)),
        "total_ms_median": statistics.median(total) * 1000,
        "total_ms_best": min(total) * 1000,
        "decode_ms_median": statistics.median(decode_only) * 1000,
        "decode_mono_ms_median": statistics.median(mono_only) * 1000,
        "to_telephony_ms_median": statistics.median(convert_only) * 1000,
        "x_real_time_median": SECONDS / statistics.median(total),
        "x_real_time_best": SECONDS / min(total),
    }


def bench_decode_peak() -> dict[str, float]:
    """Peak traced memory (MB) of decoding 20 s of 7.1 at 96 kHz FLAC whole (decode) and to 8 kHz mono
    block by block (decode_mono), and the time each takes."""
    with tempfile.TemporaryDirectory() as directory:
        data = flac_bomb(Path(directory) / "wide.flac", 20, rate=96000).read_bytes()
    limits = DecodeLimits(max_samples=10**9)
    figures: dict[str, float] = {}
    for name, work in (("decode", decode), ("decode_mono", decode_mono)):
        tracemalloc.start()
        start = time.perf_counter()
        work(data, limits)
        figures[f"{name}_wide_ms"] = (time.perf_counter() - start) * 1000
        figures[f"{name}_wide_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    return figures


def main() -> None:
    for name, value in {**bench_mp3_to_telephony(), **bench_decode_peak()}.items():
        print(f"{name:>24}: {value:,.1f}")


if __name__ == "__main__":
    main()
