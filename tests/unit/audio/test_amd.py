"""Answering-machine detector on synthetic signals: speech-like bursts with a person's or a machine's
cadence, beeps, silence; the settings' validation; property tests over arbitrary frames."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from audio.amd import FRAME, AmdDecision, AmdDetector, AmdSettings, Beep, VoicemailCue, classify
from tests.unit.audio.amd_set import RATE, tone

F = npt.NDArray[np.float64]


def syllables(seconds: float, rng: np.random.Generator, gap: float = 0.08) -> F:
    """Speech-like: voiced bursts of 120-300 ms (a 100-200 Hz pulse train through a formant-ish
    resonance, with some noise) separated by short gaps, at about -15 dBm0."""
    out: list[F] = []
    while sum(len(x) for x in out) < seconds * RATE:
        n = round(rng.uniform(0.12, 0.3) * RATE)
        t = np.arange(n) / RATE
        f0 = rng.uniform(100, 200)
        voiced = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 20) if f0 * k < 3500)
        burst = (np.asarray(voiced) + 0.2 * rng.normal(size=n)) * np.hanning(n) * 4000
        out += [burst, np.zeros(round(gap * RATE))]
    return np.concatenate(out)[: round(seconds * RATE)]


def pcm(*parts: F) -> npt.NDArray[np.int16]:
    return np.clip(np.round(np.concatenate(parts)), -32768, 32767).astype(np.int16)


def quiet(seconds: float) -> F:
    return np.zeros(round(seconds * RATE))


def test_a_short_hello_then_silence_is_a_person_decided_after_the_after_greeting_silence() -> None:
    rng = np.random.default_rng(1)
    result = classify(pcm(quiet(0.5), syllables(0.5, rng), quiet(3.0)))
    assert result.decision.outcome == "human"
    assert result.decision.cause == "after-greeting silence"
    assert 1.0 + 0.8 <= result.decision.time_s <= 1.0 + 0.8 + 0.1
    assert result.cue is None


def test_a_long_continuous_greeting_is_a_machine_decided_after_the_greeting_limit() -> None:
    rng = np.random.default_rng(2)
    result = classify(pcm(quiet(0.4), syllables(8.0, rng, gap=0.04), quiet(3.0)))
    assert result.decision.outcome == "machine"
    assert result.decision.cause in ("long greeting", "max words")
    assert result.decision.time_s <= 0.4 + 1.5 + 0.1


def test_many_words_with_pauses_shorter_than_the_after_greeting_silence_are_a_machine() -> None:
    rng = np.random.default_rng(3)
    words = [np.concatenate([syllables(0.2, rng), quiet(0.3)]) for _ in range(8)]
    result = classify(pcm(quiet(0.3), *words, quiet(3.0)), settings=AmdSettings(greeting_ms=4000))
    assert result.decision == AmdDecision("machine", "max words", result.decision.time_s)


def test_silence_is_unknown_at_the_initial_silence_limit() -> None:
    result = classify(np.zeros(8 * RATE, dtype=np.int16))
    assert result.decision == AmdDecision("unknown", "initial silence", 2.5)


def test_a_quiet_line_below_the_silence_threshold_is_silence() -> None:
    rng = np.random.default_rng(4)
    result = classify(pcm(rng.normal(0, 100, 4 * RATE)))
    assert result.decision.cause == "initial silence"


@pytest.mark.parametrize("kind", ["white", "pink", "hum"])
def test_a_loud_noisy_line_without_voice_is_silence(kind: str) -> None:
    rng = np.random.default_rng(12)
    n = 6 * RATE
    if kind == "pink":
        spectrum = np.fft.rfft(rng.normal(size=n))
        spectrum[1:] /= np.sqrt(np.arange(1, len(spectrum)))
        x = np.fft.irfft(spectrum, n)
    elif kind == "hum":
        x = np.sin(2 * np.pi * 60 * np.arange(n) / RATE) + 0.1 * rng.normal(size=n)
    else:
        x = rng.normal(size=n)
    result = classify(pcm(x / np.std(x) * 2000))
    assert result.decision == AmdDecision("unknown", "initial silence", 2.5)


@pytest.mark.parametrize("hz", [440.0, 800.0, 1000.0, 1400.0, 1950.0])
def test_the_beep_after_a_machine_greeting_cues_the_voicemail_at_its_end(hz: float) -> None:
    rng = np.random.default_rng(int(hz))
    start = 0.3 + 5.0 + 0.5
    signal = pcm(quiet(0.3), syllables(5.0, rng, gap=0.05), quiet(0.5), tone(hz, 0.4, -12.0, rng), quiet(3.0))
    result = classify(signal)
    assert result.decision.outcome == "machine"
    assert result.cue is not None and result.cue.reason == "beep" and result.cue.beep is not None
    beep = result.cue.beep
    assert abs(beep.freq_hz - hz) <= 25.0
    assert abs(beep.start_s - start) <= 0.06
    assert abs(beep.end_s - (start + 0.4)) <= 0.06
    assert result.cue.time_s == beep.end_s


def test_without_a_beep_the_voicemail_starts_at_the_end_of_the_greeting() -> None:
    rng = np.random.default_rng(5)
    speech = syllables(5.0, rng, gap=0.05)
    result = classify(pcm(quiet(0.3), speech, quiet(4.0)))
    assert result.cue is not None and result.cue.reason == "end of greeting"
    voice_end = 0.3 + np.flatnonzero(np.abs(speech) > 300)[-1] / RATE
    assert voice_end + 1.5 <= result.cue.time_s <= voice_end + 1.5 + 0.1


def test_a_machine_that_never_stops_talking_times_out() -> None:
    rng = np.random.default_rng(6)
    result = classify(pcm(syllables(12.0, rng, gap=0.04)), settings=AmdSettings(max_voicemail_wait_ms=5000))
    assert result.cue is not None and result.cue.reason == "timeout"


def test_a_tone_that_never_ends_times_out_too() -> None:
    rng = np.random.default_rng(11)
    result = classify(pcm(tone(600.0, 20.0, -10.0, rng)), settings=AmdSettings(max_voicemail_wait_ms=4000))
    assert result.decision.outcome == "machine"
    assert result.cue is not None and result.cue.reason == "timeout"
    assert result.cue.time_s == pytest.approx(result.decision.time_s + 4.0)


def test_a_beep_alone_proves_a_machine() -> None:
    rng = np.random.default_rng(7)
    result = classify(pcm(quiet(1.0), tone(1000.0, 0.5, -10.0, rng), quiet(2.0)))
    assert result.decision.outcome == "machine" and result.decision.cause == "beep"
    assert result.cue is not None and result.cue.reason == "beep"


def test_a_tone_shorter_than_the_minimum_is_no_beep() -> None:
    rng = np.random.default_rng(8)
    signal = pcm(
        quiet(0.3), syllables(5.0, rng, gap=0.05), quiet(0.5), tone(1000.0, 0.06, -10.0, rng), quiet(3.0)
    )
    result = classify(signal)
    assert result.beeps == ()
    assert result.cue is not None and result.cue.reason == "end of greeting"


def test_a_key_press_proves_a_person_and_later_audio_changes_nothing() -> None:
    det = AmdDetector()
    det.feed(np.zeros(RATE // 2, dtype=np.int16))
    events = det.key_press()
    assert events == [AmdDecision("human", "key press", 0.5)]
    assert det.done and det.key_press() == []
    assert det.feed(np.zeros(10 * RATE, dtype=np.int16)) == []


def test_events_come_in_order_decision_beep_cue() -> None:
    rng = np.random.default_rng(9)
    signal = pcm(
        quiet(0.3), syllables(4.0, rng, gap=0.05), quiet(0.4), tone(800.0, 0.3, -12.0, rng), quiet(2)
    )
    det = AmdDetector()
    events = [e for i in range(0, len(signal), 160) for e in det.feed(signal[i : i + 160])]
    assert [type(e) for e in events] == [AmdDecision, Beep, VoicemailCue]


def test_frame_size_does_not_change_the_answer() -> None:
    rng = np.random.default_rng(10)
    signal = pcm(
        quiet(0.3), syllables(5.0, rng, gap=0.05), quiet(0.5), tone(440.0, 0.3, -12.0, rng), quiet(2)
    )
    answers = {classify(signal, frame=n) for n in (1, 97, 160, 320, 4000, len(signal))}
    assert len(answers) == 1


def test_only_8_khz_is_accepted() -> None:
    with pytest.raises(ValueError, match="8000"):
        AmdDetector(rate=16000)


@pytest.mark.parametrize(
    "bad",
    [
        {"greeting_ms": 0},
        {"total_analysis_ms": -1},
        {"max_words": 0},
        {"beep_low_hz": 2500.0},
        {"beep_high_hz": 4100.0},
        {"beep_step_hz": 0.0},
        {"beep_tone_ratio": 1.5},
    ],
)
def test_bad_settings_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="AmdSettings"):
        AmdSettings(**bad)  # type: ignore[arg-type]


chunks = st.lists(arrays(np.int16, st.integers(0, 700)), min_size=1, max_size=30)


@settings(max_examples=80, deadline=None)
@given(chunks)
def test_any_frames_never_raise_and_events_are_well_formed(frames: list[npt.NDArray[np.int16]]) -> None:
    det = AmdDetector()
    events = [e for f in frames for e in det.feed(f)]
    decisions = [e for e in events if isinstance(e, AmdDecision)]
    assert len(decisions) <= 1
    assert sum(isinstance(e, VoicemailCue) for e in events) <= 1
    if any(isinstance(e, (Beep, VoicemailCue)) for e in events):
        assert decisions and decisions[0].outcome == "machine"
        assert events[0] is decisions[0]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(["noise", "tones", "bursts", "clipped"]),
    st.integers(1, 800),
    st.integers(500, 8000),
)
def test_a_decision_always_comes_within_the_total_analysis_time(
    seed: int, kind: str, frame: int, total_ms: int
) -> None:
    rng = np.random.default_rng(seed)
    n = total_ms * RATE // 1000
    if kind == "noise":
        x = rng.normal(0, rng.uniform(0, 20000), n)
    elif kind == "tones":
        x = np.sum(
            [tone(rng.uniform(50, 3900), n / RATE, rng.uniform(-60, 3), rng) for _ in range(3)], axis=0
        )
    elif kind == "bursts":
        x = syllables(n / RATE + 0.1, rng, gap=rng.uniform(0.02, 1.0))[:n] * rng.uniform(0, 8)
    else:
        x = rng.choice([-32768.0, 32767.0, 0.0], n)
    signal = pcm(np.asarray(x, dtype=np.float64))
    s = AmdSettings(total_analysis_ms=total_ms)
    det = AmdDetector(settings=s)
    for i in range(0, len(signal), frame):
        det.feed(signal[i : i + frame])
    det.feed(np.zeros(FRAME, dtype=np.int16))  # the frame that holds the last partial samples
    assert det.decision is not None
    assert det.decision.time_s <= total_ms / 1000 + FRAME / RATE
