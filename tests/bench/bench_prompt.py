"""Figures of the prompt pipeline (run on demand: `.venv/bin/python -m tests.bench.bench_prompt`).

Prints: 60 s of 44.1 kHz stereo MP3 -> telephony WAV as x real time (target >= 500x); each offline TTS
engine's speed as x real time; prompt and TTS-segment cache-hit latency (target < 2 ms); the DTMF
detector's speed on one core (target >= 1,000x real time) and its accept / reject / talk-off table.

The MP3, TTS and DTMF figures come from tests/bench/bench_audio.py, bench_tts.py and bench_dtmf.py, so each
figure has one definition; the prompt cache hit is measured here.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ivr.prompt import PromptRenderer, PromptSpec, TextSegment
from tests.bench.bench_audio import bench_mp3_to_telephony
from tests.bench.bench_dtmf import acceptance_table, bench_dtmf
from tests.bench.bench_tts import bench_tts

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "prompts"


def _median_ms(runs: int, action: Callable[[], object]) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def prompt_cache_hit_ms() -> float:
    """Median latency of a prompt cache hit (the whole render() call)."""
    with tempfile.TemporaryDirectory() as directory:
        renderer = PromptRenderer(Path(directory))
        text = (SAMPLES / "dentist_us.txt").read_text().strip()
        spec = PromptSpec((TextSegment(text), TextSegment("Thank you.")))
        renderer.render(spec)
        return _median_ms(200, lambda: renderer.render(spec))


# --- main ----------------------------------------------------------------------------------------------


def _show(label: str, value: object, unit: str = "x real time", target: str = "") -> None:
    """One figure line; a dict (another bench's figures) prints one line per entry."""
    if isinstance(value, dict):
        for key, item in value.items():
            _show(f"{label} {key}", item, "" if not key.startswith("x_") else unit, target)
        return
    figure = f"{value:,.3f}" if isinstance(value, float) and abs(value) < 10 else (
        f"{value:,.0f}" if isinstance(value, int | float) else str(value)
    )
    suffix = f" {unit}" if unit and isinstance(value, int | float) else ""
    print(f"{label}: {figure}{suffix}{f' ({target})' if target else ''}")


def _mp3_figures() -> None:
    figures = bench_mp3_to_telephony()
    for key in ("x_real_time_median", "x_real_time_best"):
        how = key.removeprefix("x_real_time_")
        _show(f"MP3 60 s 44.1 kHz stereo -> telephony WAV ({how})", figures[key], target="target >= 500x")


def _tts_figures() -> float:
    """Prints each engine's speed; returns the TTS segment cache-hit latency."""
    figures = bench_tts()
    for key, value in figures.items():
        if key.endswith("_x_realtime"):
            _show(f"TTS {key.removesuffix('_x_realtime')}", value)
    return float(figures["cache_hit_ms"])


def _dtmf_figures() -> None:
    _show("DTMF detector on one core,", bench_dtmf(), target="target >= 1,000x")
    print("DTMF accept / reject / talk-off:")
    for row in acceptance_table():
        cells = list(row.values())
        print("  " + "  ".join(f"{cell!s:<{44 if i == 0 else 10}}" for i, cell in enumerate(cells)))


def main() -> None:
    _mp3_figures()
    segment_ms = _tts_figures()
    for what, ms in (("prompt", prompt_cache_hit_ms()), ("tts segment", segment_ms)):
        print(f"cache hit, {what}: {ms:.3f} ms (target < 2 ms)")
    _dtmf_figures()


if __name__ == "__main__":
    main()
