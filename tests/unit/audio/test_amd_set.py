"""Answering-machine detection on the labelled set (tests/unit/audio/amd_set.py): espeak-ng pickups
and greetings, beeps at 440/800/1000/1400 Hz, silence, music-on-hold-like tones, noise at 20 and 10 dB
SNR. Per-class accuracy is asserted with a margin under what the bench measures (docs/campaigns.md)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from audio.amd import AmdResult, classify
from tests.unit.audio.amd_set import BEEP_HZ, SNRS_DB, Item, build


@pytest.fixture(scope="session")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Item, AmdResult]]:
    """The set, its speech rendered once per session into a temporary directory, and each item's answer."""
    cache: Path = tmp_path_factory.mktemp("amd-speech")
    return [(item, classify(item.pcm)) for item in build(cache)]


def test_the_set_covers_every_class_beep_frequency_and_snr(labelled: list[tuple[Item, AmdResult]]) -> None:
    kinds = {(item.kind, item.snr_db) for item, _ in labelled}
    for kind in ("human", "machine"):
        assert {(kind, None)} | {(kind, snr) for snr in SNRS_DB} <= kinds
    assert {("silence", None), ("music", None)} <= kinds
    assert {item.beep_hz for item, _ in labelled} == {*BEEP_HZ, None}
    greetings = [len(item.pcm) / 8000 for item, _ in labelled if item.kind == "machine"]
    assert min(greetings) > 4.0 + 3.0 and max(greetings) > 14.0  # greeting (4-15 s) + 3 s of silence


@pytest.mark.parametrize("kind", ["human", "machine", "silence", "music"])
def test_accuracy_per_class_is_at_least_90_percent(labelled: list[tuple[Item, AmdResult]], kind: str) -> None:
    by_snr: dict[float | None, list[bool]] = defaultdict(list)
    for item, result in labelled:
        if item.kind == kind:
            by_snr[item.snr_db].append(result.decision.outcome == item.expected)
    assert by_snr
    for snr, right in by_snr.items():
        assert sum(right) / len(right) >= 0.9, (kind, snr, sum(right), len(right))


def test_humans_are_decided_within_3_seconds(labelled: list[tuple[Item, AmdResult]]) -> None:
    times = sorted(r.decision.time_s for item, r in labelled if item.kind == "human" and item.snr_db is None)
    assert times[len(times) // 2] < 3.0


def test_generated_beeps_are_found_within_60_ms(labelled: list[tuple[Item, AmdResult]]) -> None:
    checked = 0
    for item, result in labelled:
        if item.beep_hz is None or (item.snr_db is not None and item.snr_db < 20):
            continue
        assert item.beep_start_s is not None and item.beep_end_s is not None
        assert result.cue is not None and result.cue.beep is not None, item.name
        beep = result.cue.beep
        assert abs(beep.freq_hz - item.beep_hz) <= 25.0, item.name
        assert abs(beep.start_s - item.beep_start_s) <= 0.06, item.name
        assert abs(beep.end_s - item.beep_end_s) <= 0.06, item.name
        assert result.cue.time_s == beep.end_s
        checked += 1
    assert checked >= 30


def test_greetings_without_a_beep_cue_at_their_end_and_never_at_a_false_beep(
    labelled: list[tuple[Item, AmdResult]],
) -> None:
    no_beep = [(item, r) for item, r in labelled if item.kind == "machine" and item.beep_hz is None]
    assert no_beep
    for item, result in no_beep:
        assert result.beeps == (), item.name
        assert result.cue is not None and result.cue.reason == "end of greeting", item.name
