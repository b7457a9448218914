"""Answering-machine detection figures on the labelled set (tests/unit/audio/amd_set.py): accuracy per
class and SNR, decision times, beep timing errors, and speed in x real time. Prints figures only.

.venv/bin/python -m tests.bench.bench_amd
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from audio.amd import AmdDetector, AmdResult, AmdSettings, classify
from tests.unit.audio.amd_set import RATE, Item, build


def _snr(snr: float | None) -> str:
    return "clean" if snr is None else f"{snr:g} dB"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="amd-bench-") as tmp:
        t0 = time.perf_counter()
        items = build(Path(tmp), snrs=(20.0, 10.0, 5.0))
        print(f"set: {len(items)} recordings built in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        results: list[tuple[Item, AmdResult]] = [(item, classify(item.pcm)) for item in items]
        spent = time.perf_counter() - t0

    right: dict[tuple[str, str], list[bool]] = defaultdict(list)
    wrong: list[str] = []
    for item, r in results:
        ok = r.decision.outcome == item.expected
        right[(item.kind, _snr(item.snr_db))].append(ok)
        if not ok:
            wrong.append(
                f"{item.name}: {r.decision.outcome} ({r.decision.cause}) at {r.decision.time_s:.2f} s"
            )
    print("\naccuracy per class (expected: human, machine, silence -> unknown, music -> machine)")
    print(f"{'class':<10}{'SNR':>8}{'right':>8}{'of':>5}{'%':>8}")
    for (kind, level), oks in sorted(right.items()):
        print(f"{kind:<10}{level:>8}{sum(oks):>8}{len(oks):>5}{100 * sum(oks) / len(oks):>8.1f}")
    total = [ok for oks in right.values() for ok in oks]
    print(f"{'all':<10}{'':>8}{sum(total):>8}{len(total):>5}{100 * sum(total) / len(total):>8.1f}")
    for line in wrong:
        print("  wrong:", line)

    print("\ndecision time (s from answer), median / max")
    for kind in ("human", "machine", "silence", "music"):
        for snr in sorted({item.snr_db for item, _ in results if item.kind == kind}, key=lambda s: s or 99):
            times = [r.decision.time_s for item, r in results if item.kind == kind and item.snr_db == snr]
            print(f"  {kind:<8}{_snr(snr):>8}: {statistics.median(times):.2f} / {max(times):.2f}")

    print("\nbeeps (greetings with a beep): found, start and end error in ms (median / max)")
    for snr in sorted({item.snr_db for item, _ in results if item.beep_hz}, key=lambda s: s or 99):
        beeped = [(item, r) for item, r in results if item.beep_hz and item.snr_db == snr]
        found = [(item, r.cue.beep) for item, r in beeped if r.cue and r.cue.beep]
        starts = [abs(b.start_s - (item.beep_start_s or 0)) * 1000 for item, b in found]
        ends = [abs(b.end_s - (item.beep_end_s or 0)) * 1000 for item, b in found]
        line = f"  {_snr(snr):>8}: {len(found)}/{len(beeped)}"
        if found:
            line += f", start {statistics.median(starts):.0f}/{max(starts):.0f}"
            line += f", end {statistics.median(ends):.0f}/{max(ends):.0f}"
        print(line)
    false = sum(1 for item, r in results if item.kind == "machine" and item.beep_hz is None and r.beeps)
    print(f"  false beeps in greetings without one: {false}")

    audio_s = sum(len(item.pcm) for item in items) / RATE
    print(f"\nspeed: classify() over {audio_s:.0f} s of audio (stops once done) in {spent:.2f} s")
    longest = max(items, key=lambda i: len(i.pcm)).pcm
    never = 10**9  # thresholds never reached: every frame goes through the whole analysis
    det = AmdDetector(
        settings=AmdSettings(
            initial_silence_ms=never,
            greeting_ms=never,
            after_greeting_silence_ms=never,
            total_analysis_ms=never,
            max_words=never,
            max_word_ms=never,
            min_beep_ms=never,
        )
    )
    t0 = time.perf_counter()
    for i in range(0, len(longest), 160):
        det.feed(longest[i : i + 160])
    per_frame = (time.perf_counter() - t0) / max(1, len(longest) // 160)
    print(f"feed() of one 20 ms frame: {per_frame * 1e6:.0f} us ({0.02 / per_frame:.0f} x real time)")


if __name__ == "__main__":
    main()
