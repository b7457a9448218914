"""Figures of the prompt pipeline (run on demand: `.venv/bin/python -m tests.bench.bench_prompt`).

Prints: 60 s of 44.1 kHz stereo MP3 -> telephony WAV as x real time (target >= 500x); each offline TTS
engine's speed as x real time; prompt and TTS-segment cache-hit latency (target < 2 ms); the DTMF
detector's speed on one core (target >= 1,000x real time) and its accept / reject / talk-off table.

Where the audio, TTS and DTMF benches (tests/bench/bench_audio.py, bench_tts.py, bench_dtmf.py) exist,
their functions are used, so each figure has one definition; otherwise the figure is measured here.
"""

from __future__ import annotations

import importlib
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile

from audio import TELEPHONY_RATE
from audio.decode import decode
from audio.dtmf import DtmfDetector, detect, generate
from audio.settings import DecodeLimits
from audio.telephony import to_telephony
from ivr.prompt import PromptRenderer, PromptSpec, TextSegment
from tts.base import Voice
from tts.cache import SegmentCache
from tts.registry import available_engines, get_engine
from tts.render import render_speech
from tts.settings import TTSSettings

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "prompts"
ONLINE_ENGINES = {"gtts"}
"""Engines that need the internet: never benchmarked here (benches talk to 127.0.0.1 only)."""


def _other(module: str, name: str) -> Callable[..., Any] | None:
    try:
        return getattr(importlib.import_module(f"tests.bench.{module}"), name)  # type: ignore[no-any-return]
    except (ImportError, AttributeError):
        return None


def _best_of(runs: int, action: Callable[[], object]) -> float:
    """The shortest of `runs` timings of action(), in seconds (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


# --- MP3 -> telephony ----------------------------------------------------------------------------------


def mp3_60s_stereo() -> bytes:
    """60 s of 44.1 kHz stereo MP3: a tone glide plus noise, so the encoder has real work to keep."""
    rate, seconds = 44100, 60
    t = np.arange(rate * seconds) / rate
    glide = 0.3 * np.sin(2 * np.pi * (200 + 30 * t) * t)
    noise = np.random.default_rng(7).normal(0, 0.05, (t.size, 2))
    buffer = io.BytesIO()
    soundfile.write(buffer, np.column_stack([glide, glide[::-1]]) + noise, rate, format="MP3")
    return buffer.getvalue()


def mp3_to_telephony_speed() -> float:
    """x real time of decode + to_telephony on 60 s of 44.1 kHz stereo MP3."""
    data = mp3_60s_stereo()
    limits = DecodeLimits(max_seconds=120)

    def convert() -> None:
        decoded = decode(data, limits)
        to_telephony(decoded.samples, decoded.rate)

    return 60.0 / _best_of(3, convert)


# --- TTS -----------------------------------------------------------------------------------------------


def tts_speeds() -> dict[str, str]:
    """Each offline engine's x real time on the dentist reminder (or why it is unavailable)."""
    text = (SAMPLES / "dentist_us.txt").read_text().strip()
    result: dict[str, str] = {}
    for name, ok in available_engines().items():
        if name in ONLINE_ENGINES:
            result[name] = "skipped (online engine)"
        elif ok is not True:
            result[name] = f"unavailable ({ok})"
        else:
            engine = get_engine(TTSSettings(engine=name))
            speech = engine.synthesize(text, Voice())
            elapsed = _best_of(3, partial(engine.synthesize, text, Voice()))
            result[name] = f"{speech.seconds / elapsed:,.0f}x real time ({speech.seconds:.1f} s of speech)"
    return result


# --- cache hits ----------------------------------------------------------------------------------------


def _median_ms(runs: int, action: Callable[[], object]) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def cache_hit_ms() -> dict[str, float]:
    """Median latency of a prompt cache hit (whole render() call) and of a TTS segment cache hit."""
    with tempfile.TemporaryDirectory() as directory:
        renderer = PromptRenderer(Path(directory))
        text = (SAMPLES / "dentist_us.txt").read_text().strip()
        spec = PromptSpec((TextSegment(text), TextSegment("Thank you.")))
        renderer.render(spec)
        prompt = _median_ms(200, lambda: renderer.render(spec))
        cache = SegmentCache(Path(directory) / "segments", 64 * 1024 * 1024)
        render_speech(text, Voice(), TTSSettings(), cache)
        segment = _median_ms(200, lambda: render_speech(text, Voice(), TTSSettings(), cache))
    return {"prompt": prompt, "tts segment": segment}


# --- DTMF ----------------------------------------------------------------------------------------------


def dtmf_speeds() -> dict[str, float]:
    """x real time of the streaming detector on 60 s of noise and digits: fed 20 ms frames (as a call
    delivers them) and fed the whole signal at once (the batch form)."""
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 1000, TELEPHONY_RATE * 50).astype(np.int16)
    audio = np.concatenate([noise, np.tile(generate("0123456789*#"), 4)])[: TELEPHONY_RATE * 60]
    seconds = len(audio) / TELEPHONY_RATE
    frames = audio.reshape(-1, 160)

    def streaming() -> None:
        detector = DtmfDetector()
        for frame in frames:
            detector.feed(frame)
        detector.flush()

    return {
        "20 ms frames": seconds / _best_of(3, streaming),
        "whole signal": seconds / _best_of(3, lambda: detect(audio)),
    }


def _speech_pcm() -> npt.NDArray[np.int16]:
    parts = []
    for name, voice in (("dentist_us", Voice("us", "female")), ("car_service_us", Voice("us", "male")),
                        ("dentist_es", Voice("es", "female")), ("car_service_es", Voice("es", "male"))):
        speech = render_speech((SAMPLES / f"{name}.txt").read_text(), voice, TTSSettings())
        parts.append(to_telephony(speech.pcm, speech.rate))
    return np.concatenate(parts)


def acceptance_table() -> list[tuple[str, str, str]]:
    """(case, expected, got) rows: Q.24-style accept and reject cases and talk-off on synthetic speech."""
    rows: list[tuple[str, str, str]] = []
    digits = "0123456789*#ABCD"
    cases: list[tuple[str, dict[str, float], bool]] = [
        ("nominal -10 dBm0, 100 ms", {}, True),
        ("weak -25 dBm0", {"level_dbm0": -25}, True),
        ("strong 0 dBm0", {"level_dbm0": 0}, True),
        ("40 ms tone, 40 ms pause", {"tone_ms": 40, "pause_ms": 40}, True),
        ("frequency +1.5 %", {"freq_error": 0.015}, True),
        ("frequency -1.5 %", {"freq_error": -0.015}, True),
        ("twist +4 dB", {"twist_db": 4}, True),
        ("twist -8 dB", {"twist_db": -8}, True),
        ("frequency +3.5 %", {"freq_error": 0.035}, False),
        ("frequency -3.5 %", {"freq_error": -0.035}, False),
        ("20 ms tone", {"tone_ms": 20, "pause_ms": 100}, False),
        ("-55 dBm0", {"level_dbm0": -55}, False),
    ]
    for label, options, accept in cases:
        found = "".join(d.digit for d in detect(generate(digits, **options)))  # type: ignore[arg-type]
        expected = digits if accept else "(none)"
        rows.append((label, expected, found or "(none)"))
    speech = _speech_pcm()
    false_digits = "".join(d.digit for d in detect(speech))
    talk_off = f"talk-off: {len(speech) / TELEPHONY_RATE:.0f} s of espeak speech"
    rows.append((talk_off, "(none)", false_digits or "(none)"))
    return rows


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
    external = _other("bench_audio", "bench_mp3_to_telephony")
    if external is None:
        _show("MP3 60 s 44.1 kHz stereo -> telephony WAV", mp3_to_telephony_speed(), target="target >= 500x")
        return
    figures = dict(external())
    for key in ("x_real_time_median", "x_real_time_best"):
        if key in figures:
            how = key.removeprefix("x_real_time_")
            _show(f"MP3 60 s 44.1 kHz stereo -> telephony WAV ({how})", float(figures[key]),
                  target="target >= 500x")


def _tts_figures() -> None:
    external = _other("bench_tts", "bench_tts")
    if external is None:
        for name, figure in tts_speeds().items():
            print(f"TTS {name}: {figure}")
        return
    for key, value in dict(external()).items():
        if key.endswith("_x_realtime"):
            _show(f"TTS {key.removesuffix('_x_realtime')}", value)
        elif key != "cache_hit_ms":
            _show(f"TTS {key}", value, unit="")


def _dtmf_figures() -> None:
    external = _other("bench_dtmf", "bench_dtmf")
    speeds = external() if external is not None else dtmf_speeds()
    _show("DTMF detector on one core,", speeds, target="target >= 1,000x")
    table = _other("bench_dtmf", "acceptance_table") or acceptance_table
    rows = table()
    print("DTMF accept / reject / talk-off:")
    for row in rows if isinstance(rows, list | tuple) else str(rows).splitlines():
        if isinstance(row, tuple) and len(row) == 3:
            label, expected, got = row
            verdict = "ok" if expected == got else "MISMATCH"
            print(f"  {label:<40} expected {expected:<18} got {got:<18} {verdict}")
        elif isinstance(row, dict):
            cells = list(row.values())
            print("  " + "  ".join(f"{cell!s:<{44 if i == 0 else 10}}" for i, cell in enumerate(cells)))
        else:
            print(f"  {row}")


def main() -> None:
    _mp3_figures()
    _tts_figures()
    for what, ms in cache_hit_ms().items():
        print(f"cache hit, {what}: {ms:.3f} ms (target < 2 ms)")
    _dtmf_figures()


if __name__ == "__main__":
    main()
