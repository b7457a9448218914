"""The DTMF detector against ITU-T Q.24 (AT&T column) edges, its timing, streaming and the generator."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio.dtmf import (
    COL_HZ,
    DIGITS,
    MULAW_PEAK,
    ROW_HZ,
    Digit,
    DtmfDetector,
    DtmfEvent,
    DtmfSettings,
    dbm0_to_amplitude,
    detect,
    generate,
    power_to_dbm0,
)
from tests.unit.audio.test_dtmf_signals import RATE, dual_tone, to_pcm, with_noise

LEAD_MS = 57.0
"""Silence before each test tone: off the 5 ms analysis grid on purpose."""


def framed(
    tone: npt.NDArray[np.float64], lead_ms: float = LEAD_MS, tail_ms: float = 60.0
) -> npt.NDArray[np.float64]:
    return np.concatenate(
        [np.zeros(round(RATE * lead_ms / 1000)), tone, np.zeros(round(RATE * tail_ms / 1000))]
    )


def found(x: npt.NDArray[np.float64]) -> str:
    return "".join(d.digit for d in detect(to_pcm(x)))


def sweep_digits(**kw: float) -> dict[str, str]:
    """What the detector reports for each of the 16 digits under the given tone conditions."""
    rng = np.random.default_rng(11)
    ms = kw.pop("ms", 60.0)
    return {d: found(framed(dual_tone(d, ms, rng=rng, **kw))) for d in DIGITS}


# --- levels and the generator -----------------------------------------------------------------------


def test_dbm0_convention_uses_the_mulaw_peak() -> None:
    assert dbm0_to_amplitude(3.14) == pytest.approx(MULAW_PEAK)
    assert dbm0_to_amplitude(0.0) == pytest.approx(22379, abs=1)
    assert power_to_dbm0(dbm0_to_amplitude(-17.0) ** 2 / 2) == pytest.approx(-17.0)


def test_generate_lays_out_tones_and_pauses() -> None:
    x = generate("12", tone_ms=50, pause_ms=30, level_dbm0=-20)
    assert x.dtype == np.int16 and len(x) == 2 * (400 + 240)
    assert not x[400:640].any() and not x[1040:].any()
    spectrum = np.abs(np.fft.rfft(x[:400].astype(float), 8000)) ** 2 * 2 / 400**2
    assert power_to_dbm0(spectrum[697]) == pytest.approx(-20, abs=0.1)
    assert power_to_dbm0(spectrum[1209]) == pytest.approx(-20, abs=0.1)


def test_generate_applies_twist_and_frequency_error() -> None:
    x = generate("D", tone_ms=1000, pause_ms=0, twist_db=-6, freq_error=0.01).astype(float)
    spectrum = np.abs(np.fft.rfft(x)) ** 2 * 2 / len(x) ** 2
    low, high = round(941 * 1.01), round(1633 * 1.01)  # 950.4 and 1649.3 Hz: off the 1 Hz bins
    assert int(np.argmax(spectrum[:1200])) == low and int(np.argmax(spectrum[1200:])) + 1200 == high
    band = spectrum[low - 20 : low + 21].sum(), spectrum[high - 20 : high + 21].sum()
    assert power_to_dbm0(band[1]) - power_to_dbm0(band[0]) == pytest.approx(-6, abs=0.2)


def test_generate_refuses_unknown_digits() -> None:
    with pytest.raises(ValueError):
        generate("12E")


def test_detector_refuses_other_rates() -> None:
    with pytest.raises(ValueError):
        DtmfDetector(rate=16000)


# --- every digit, timing ---------------------------------------------------------------------------


def test_every_digit_is_detected_with_its_times() -> None:
    x = generate(DIGITS, tone_ms=80, pause_ms=70)
    got = detect(x)
    assert [d.digit for d in got] == list(DIGITS)
    for i, d in enumerate(got):
        assert d.start_s == pytest.approx(i * 0.15, abs=0.02)
        assert d.end_s == pytest.approx(i * 0.15 + 0.08, abs=0.02)


def test_lower_case_letters_are_generated() -> None:
    assert [d.digit for d in detect(generate("abcd"))] == list("ABCD")


def test_silence_and_empty_input_yield_nothing() -> None:
    assert detect(np.zeros(8000, dtype=np.int16)) == []
    assert detect(np.zeros(0, dtype=np.int16)) == []


# --- Q.24 edges ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [0.015, -0.015])
@pytest.mark.parametrize("group", ["low", "high", "both"])
def test_frequency_error_of_1_5_percent_is_accepted(group: str, error: float) -> None:
    kw = {"low_error": error if group != "high" else 0.0, "high_error": error if group != "low" else 0.0}
    assert sweep_digits(**kw) == {d: d for d in DIGITS}


@pytest.mark.parametrize("error", [0.035, -0.035, 0.05, -0.06])
@pytest.mark.parametrize("group", ["low", "high", "both"])
def test_frequency_error_of_3_5_percent_is_rejected(group: str, error: float) -> None:
    kw = {"low_error": error if group != "high" else 0.0, "high_error": error if group != "low" else 0.0}
    assert sweep_digits(**kw) == {d: "" for d in DIGITS}


@pytest.mark.parametrize("level", [0.0, -10.0, -25.0, -30.0])
def test_levels_from_0_to_minus_25_dbm0_are_accepted(level: float) -> None:
    assert sweep_digits(low_dbm0=level) == {d: d for d in DIGITS}


@pytest.mark.parametrize("level", [-40.0, -55.0, -70.0])
def test_weak_tones_are_rejected(level: float) -> None:
    assert sweep_digits(low_dbm0=level) == {d: "" for d in DIGITS}


@pytest.mark.parametrize(("low", "high"), [(-10, -6), (-10, -18), (-4, 0), (0, -8), (-25, -21), (-17, -25)])
def test_twist_of_plus_4_and_minus_8_db_is_accepted(low: float, high: float) -> None:
    assert sweep_digits(low_dbm0=low, high_dbm0=high) == {d: d for d in DIGITS}


@pytest.mark.parametrize(("low", "high"), [(-10, -2), (-10, -22), (-12, 0), (0, -14)])
def test_twist_of_plus_8_and_minus_12_db_is_rejected(low: float, high: float) -> None:
    assert sweep_digits(low_dbm0=low, high_dbm0=high) == {d: "" for d in DIGITS}


def test_40_ms_tones_with_40_ms_pauses_are_separate_digits() -> None:
    for lead in (0.0, 1.3, 2.6, 3.9):
        x = np.concatenate([np.zeros(round(lead * 8)), generate("1122*#D0", tone_ms=40, pause_ms=40)])
        assert "".join(d.digit for d in detect(x)) == "1122*#D0"


@pytest.mark.parametrize("ms", [23.0, 20.0, 10.0])
def test_short_tones_are_rejected(ms: float) -> None:
    for lead in (50.0, 51.2, 52.5, 53.7):
        rng = np.random.default_rng(int(lead * 10))
        assert all(found(framed(dual_tone(d, ms, rng=rng), lead)) == "" for d in DIGITS)


@pytest.mark.parametrize(
    "kw",
    [
        {"low_dbm0": -25.0},
        {"low_dbm0": -25.0, "high_dbm0": -21.0, "low_error": 0.015, "high_error": -0.015},
        {"low_dbm0": -17.0, "high_dbm0": -25.0, "low_error": -0.015, "high_error": 0.015},
        {"low_dbm0": 0.0},
    ],
)
def test_tones_at_15_db_snr_are_accepted(kw: dict[str, float]) -> None:
    rng = np.random.default_rng(15)
    for d in DIGITS:
        tone = dual_tone(d, 40, rng=rng, **kw)
        noisy = with_noise(framed(tone, tail_ms=100), 15.0, float(np.mean(tone * tone)), rng)
        assert found(noisy) == d


def test_noise_alone_is_not_a_digit() -> None:
    rng = np.random.default_rng(2)
    for level in (-40.0, -20.0, 0.0):
        noise = rng.normal(0, dbm0_to_amplitude(level) / np.sqrt(2), 5 * RATE)
        assert found(noise) == ""


def test_edges_are_timed_within_20_ms_in_noise() -> None:
    rng = np.random.default_rng(4)
    tone = dual_tone("8", 120, rng=rng, low_dbm0=-20, high_dbm0=-22)
    x = with_noise(framed(tone, lead_ms=333.3), 15.0, float(np.mean(tone * tone)), rng)
    (digit,) = detect(to_pcm(x))
    assert digit.start_s == pytest.approx(0.3333, abs=0.02)
    assert digit.end_s == pytest.approx(0.4533, abs=0.02)


def test_a_short_dropout_does_not_split_a_digit() -> None:
    x = dual_tone("4", 200)
    x[800:840] = 0  # 5 ms
    assert found(framed(x)) == "4"


# --- streaming ----------------------------------------------------------------------------------------


def stream(x: npt.NDArray[np.int16], sizes: list[int]) -> list[DtmfEvent]:
    det = DtmfDetector()
    events: list[DtmfEvent] = []
    pos, k = 0, 0
    while pos < len(x):
        size = sizes[k % len(sizes)]
        events += det.feed(x[pos : pos + size])
        pos, k = pos + size, k + 1
    return events + det.flush()


def pairs(events: list[DtmfEvent]) -> list[Digit]:
    starts = events[0::2]
    ends = events[1::2]
    assert all(
        s.kind == "start" and e.kind == "end" and s.digit == e.digit
        for s, e in zip(starts, ends, strict=True)
    )
    return [Digit(s.digit, s.time_s, e.time_s) for s, e in zip(starts, ends, strict=True)]


@pytest.mark.parametrize("sizes", [[160], [1], [7, 333, 1], [4000], [39, 41, 80, 0]])
def test_streaming_in_any_frame_sizes_matches_the_batch_form(sizes: list[int]) -> None:
    rng = np.random.default_rng(9)
    x = np.concatenate(
        [generate("159#", tone_ms=45, pause_ms=55), generate("0D", level_dbm0=-24, twist_db=3)]
    )
    x = to_pcm(with_noise(np.concatenate([np.zeros(123), x]).astype(float), 20.0, 3e5, rng))
    assert pairs(stream(x, sizes)) == detect(x)


def test_events_come_as_soon_as_the_evidence_is_in() -> None:
    det = DtmfDetector()
    x = generate("7", tone_ms=200, pause_ms=200)
    times = []
    for i in range(0, len(x), 160):
        times += [(i / RATE, ev) for ev in det.feed(x[i : i + 160])]
    (t_start, start), (t_end, end) = times
    assert (start.kind, start.time_s) == ("start", 0.0) and t_start <= 0.06
    assert (end.kind, end.time_s) == ("end", pytest.approx(0.2)) and t_end <= 0.26


def test_flush_ends_an_open_digit_and_time_continues() -> None:
    det = DtmfDetector()
    events = det.feed(generate("3", tone_ms=100, pause_ms=0))
    events += det.flush()
    assert [(e.kind, e.time_s) for e in events] == [("start", 0.0), ("end", pytest.approx(0.1))]
    later = det.feed(generate("6")) + det.flush()
    assert [(e.digit, e.time_s) for e in later] == [("6", pytest.approx(0.1)), ("6", pytest.approx(0.2))]


def test_reset_restarts_stream_time() -> None:
    det = DtmfDetector()
    det.feed(generate("9", tone_ms=60, pause_ms=0))
    det.reset()
    events = det.feed(generate("2")) + det.flush()
    assert [(e.digit, e.kind, e.time_s) for e in events] == [
        ("2", "start", 0.0),
        ("2", "end", pytest.approx(0.1)),
    ]


def test_settings_must_tile_the_block() -> None:
    with pytest.raises(ValueError):
        DtmfDetector(settings=DtmfSettings(block=160, hop=48))


# --- properties ---------------------------------------------------------------------------------------

valid_tone = st.fixed_dictionaries(
    {
        "digit": st.sampled_from(DIGITS),
        "ms": st.floats(40, 150),
        "pause_ms": st.floats(40, 120),
        "low_dbm0": st.floats(-25, 0),
        "twist": st.floats(-8, 4),
        "low_error": st.floats(-0.015, 0.015),
        "high_error": st.floats(-0.015, 0.015),
    }
)


@settings(max_examples=60, deadline=None)
@given(tones=st.lists(valid_tone, min_size=1, max_size=6), seed=st.integers(0, 2**32 - 1))
def test_random_valid_digit_strings_are_detected_exactly(tones: list[dict[str, float]], seed: int) -> None:
    rng = np.random.default_rng(seed)
    parts = [np.zeros(int(rng.integers(0, 400)))]
    truth: list[tuple[str, float, float]] = []
    t = len(parts[0]) / RATE
    for tone in tones:
        # both tones within -25..0 dBm0, twist within +4/-8 dB
        low = float(np.clip(tone["low_dbm0"], max(-25.0, -25.0 - tone["twist"]), min(0.0, -tone["twist"])))
        high = low + tone["twist"]
        x = dual_tone(
            str(tone["digit"]),
            tone["ms"],
            low_dbm0=low,
            high_dbm0=high,
            low_error=tone["low_error"],
            high_error=tone["high_error"],
            rng=rng,
        )
        truth.append((str(tone["digit"]), t, t + len(x) / RATE))
        parts += [x, np.zeros(round(RATE * tone["pause_ms"] / 1000))]
        t += (len(x) + len(parts[-1])) / RATE
    got = detect(to_pcm(np.concatenate(parts)))
    assert [d.digit for d in got] == [d for d, _, _ in truth]
    for d, (_, start, end) in zip(got, truth, strict=True):
        assert abs(d.start_s - start) <= 0.02 and abs(d.end_s - end) <= 0.02


@settings(max_examples=25, deadline=None)
@given(
    digits=st.text(alphabet=DIGITS, min_size=1, max_size=5),
    level=st.floats(-25, -3),
    twist=st.floats(-8, 3),
    error=st.floats(-0.015, 0.015),
)
def test_generated_strings_round_trip(digits: str, level: float, twist: float, error: float) -> None:
    x = generate(digits, level_dbm0=level, twist_db=twist, freq_error=error, tone_ms=50, pause_ms=50)
    assert "".join(d.digit for d in detect(x)) == digits


def test_frequency_tables() -> None:
    assert ROW_HZ == (697.0, 770.0, 852.0, 941.0)
    assert COL_HZ == (1209.0, 1336.0, 1477.0, 1633.0)
