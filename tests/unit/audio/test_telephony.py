"""to_telephony: resampling without aliasing, loudness on target, no clipping, no DC, exact rounding."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pyloudnorm
import pytest

from audio import TELEPHONY_RATE
from audio.errors import CorruptAudio
from audio.settings import TelephonySettings
from audio.telephony import (
    downmix,
    loudness_lufs,
    peak_dbfs,
    remove_dc,
    to_int16,
    to_telephony,
)

from .conftest import dominant_hz

CD = 44100


def sine(hz: float, seconds: float, rate: int = CD, amplitude: float = 0.5) -> npt.NDArray[np.float32]:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def speech_like(seconds: float, rate: int = CD, seed: int = 7) -> npt.NDArray[np.float32]:
    """Noise with a falling spectrum, syllable-rate envelope and pauses: crest factor like speech."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    white = rng.standard_normal(n)
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n, 1 / rate)
    shaped = np.fft.irfft(spectrum / np.maximum(freqs, 200.0) ** 0.7, n)
    t = np.arange(n) / rate
    envelope = np.clip(np.sin(2 * np.pi * 3.7 * t) + 0.3 * np.sin(2 * np.pi * 0.4 * t), 0.0, None)
    voiced = shaped * envelope
    scaled: npt.NDArray[np.float32] = (0.3 * voiced / np.max(np.abs(voiced))).astype(np.float32)
    return scaled


def band_power_db(pcm: npt.NDArray[np.int16], hz: float) -> float:
    """Power (dB) of the strongest bin within 20 Hz of `hz`, steady-state middle part, Kaiser window."""
    middle = pcm[TELEPHONY_RATE // 2 : -TELEPHONY_RATE // 2].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(middle * np.kaiser(middle.size, 20.0))) ** 2
    freqs = np.fft.rfftfreq(middle.size, 1 / TELEPHONY_RATE)
    return float(10 * np.log10(spectrum[np.abs(freqs - hz) <= 20].max() + 1e-30))


def test_six_khz_is_rejected_by_at_least_90_db() -> None:
    # 6 kHz at 44.1 kHz would alias to 2 kHz at 8 kHz; the 1 kHz tone of equal level is the reference.
    mixed = sine(1000, 3.0, amplitude=0.3) + sine(6000, 3.0, amplitude=0.3)
    out = to_telephony(mixed, CD)
    assert band_power_db(out, 1000) - band_power_db(out, 2000) >= 90.0


def test_out_of_band_only_input_stays_quiet() -> None:
    # Faded in and out, so that no onset click puts energy into the telephony band.
    tone = sine(6000, 1.0, amplitude=0.9) * np.hanning(CD).astype(np.float32)
    out = to_telephony(tone, CD)
    assert peak_dbfs(out) < -60.0  # the residue gets at most max_gain_db, never the loudness target


@pytest.mark.parametrize("target", [-19.0, -23.0, -26.0])
@pytest.mark.parametrize("kind", ["speech", "tone"])
def test_loudness_within_half_a_lu_of_target(kind: str, target: float) -> None:
    if kind == "speech":
        source = speech_like(4.0)
    else:
        partials = ((440, 0.05), (880, 0.02), (1320, 0.01))
        source = sum((sine(hz, 3.0, amplitude=level) for hz, level in partials), np.zeros(3 * CD, np.float32))
    out = to_telephony(source, CD, TelephonySettings(target_lufs=target))
    assert abs(loudness_lufs(out, TELEPHONY_RATE) - target) <= 0.5


def test_short_input_is_normalised_too() -> None:
    out = to_telephony(sine(700, 0.15), CD)
    assert out.size == round(0.15 * TELEPHONY_RATE)
    assert abs(loudness_lufs(out, TELEPHONY_RATE) - (-19.0)) <= 0.5


def test_tiny_input_does_not_fail() -> None:
    assert to_telephony(sine(700, 0.001), CD).dtype == np.int16
    assert to_telephony(np.zeros(0, dtype=np.float32), CD).size == 0


def test_silence_stays_silence() -> None:
    out = to_telephony(np.zeros(CD, dtype=np.float32), CD)
    assert out.size == TELEPHONY_RATE
    assert not out.any()
    assert loudness_lufs(out, TELEPHONY_RATE) == -math.inf
    assert peak_dbfs(out) == -math.inf


def test_loud_square_wave_never_reaches_the_int16_limits() -> None:
    square = np.sign(sine(220, 2.0)).astype(np.float32)  # full scale, and soxr overshoots it
    out = to_telephony(square, CD, TelephonySettings(target_lufs=0.0, peak_ceiling_dbfs=-1.0))
    assert out.max() < 32767 and out.min() > -32768
    assert np.abs(out.astype(np.int32)).max() <= round(32768 * 10 ** (-1 / 20))
    assert peak_dbfs(out) == pytest.approx(-1.0, abs=0.01)


def test_gain_is_capped_for_very_quiet_input() -> None:
    # -60 dBFS (about -63 LUFS, above BS.1770's -70 LUFS gate) would need +44 dB to reach -19 LUFS.
    out = to_telephony(sine(1000, 1.0, amplitude=1e-3), CD, TelephonySettings(max_gain_db=20.0))
    assert peak_dbfs(out[2000:-2000]) == pytest.approx(-60.0 + 20.0, abs=0.2)  # past the onset's overshoot


def test_dc_is_removed() -> None:
    out = to_telephony(sine(1000, 2.0, amplitude=0.1) + np.float32(0.4), CD)
    assert abs(float(out.mean())) < 1.0
    assert abs(dominant_hz(out.astype(np.float64), TELEPHONY_RATE) - 1000) < 2


def test_highpass_keeps_the_telephony_band_and_removes_rumble() -> None:
    def gain(hz: float) -> float:
        tone = sine(hz, 2.0, TELEPHONY_RATE)
        return float(np.std(remove_dc(tone)[TELEPHONY_RATE:]) / np.std(tone[TELEPHONY_RATE:]))

    assert gain(300) > 10 ** (-0.1 / 20)
    assert gain(3400) > 10 ** (-0.01 / 20)
    assert gain(10) < 0.05


def test_rounding_known_values() -> None:
    lsb = 1 / 32768
    values = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49, 0.51, 100.0, -100.0]) * lsb
    assert to_int16(values).tolist() == [0, 2, 2, 0, -2, -2, 0, 1, 100, -100]
    assert to_int16(np.array([1.0, -1.0, 1.5, -1.5, 0.25])).tolist() == [32767, -32768, 32767, -32768, 8192]


def test_downmix_is_the_channel_mean() -> None:
    left, right = sine(500, 0.1), sine(900, 0.1, amplitude=0.2)
    np.testing.assert_allclose(downmix(np.stack([left, right], axis=1)), (left + right) / 2, atol=1e-7)
    assert downmix(left[:, None]).tolist() == left.tolist()
    with pytest.raises(ValueError):
        downmix(np.zeros((2, 2, 2), dtype=np.float32))


def test_identical_channels_give_the_mono_result() -> None:
    mono = speech_like(1.0)
    np.testing.assert_array_equal(to_telephony(np.stack([mono, mono], axis=1), CD), to_telephony(mono, CD))


def test_opposite_channels_cancel_to_silence() -> None:
    tone = sine(440, 1.0)
    assert not to_telephony(np.stack([tone, -tone], axis=1), CD).any()


def test_trimming_keeps_the_set_margin() -> None:
    quiet = np.zeros(CD // 2, dtype=np.float32)
    source = np.concatenate([quiet, sine(800, 0.5), quiet, quiet[: CD // 5]])
    settings = TelephonySettings(trim_silence=True, keep_silence_ms=100)
    out = to_telephony(source, CD, settings)
    # The resampler's ringing (about 2 ms) at the tone's edges counts as sound.
    assert abs(out.size - (4000 + 2 * 800)) <= 48
    assert peak_dbfs(out[:700]) < -50.0 and peak_dbfs(out[-700:]) < -50.0
    untrimmed = to_telephony(source, CD)
    assert abs(untrimmed.size - round(source.size * TELEPHONY_RATE / CD)) <= 1


def test_trimming_silence_only_gives_nothing() -> None:
    out = to_telephony(np.zeros(CD, dtype=np.float32), CD, TelephonySettings(trim_silence=True))
    assert out.size == 0


def test_trim_threshold_is_a_setting() -> None:
    soft = np.concatenate([sine(800, 0.3, amplitude=0.001), sine(800, 0.3, amplitude=0.5)])
    keep_soft = TelephonySettings(trim_silence=True, silence_threshold_dbfs=-90.0, keep_silence_ms=0)
    drop_soft = TelephonySettings(trim_silence=True, silence_threshold_dbfs=-30.0, keep_silence_ms=0)
    assert to_telephony(soft, CD, keep_soft).size > to_telephony(soft, CD, drop_soft).size + 2000


def test_eight_khz_input_keeps_its_length_and_int16_input_is_accepted() -> None:
    pcm = to_int16(sine(1000, 0.5, TELEPHONY_RATE))
    out = to_telephony(pcm, TELEPHONY_RATE)
    assert out.size == pcm.size
    assert abs(loudness_lufs(out, TELEPHONY_RATE) + 19.0) <= 0.5


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 48000, 96000])
def test_any_rate_gives_8khz(rate: int) -> None:
    out = to_telephony(sine(1000, 1.0, rate), rate)
    assert abs(out.size - TELEPHONY_RATE) <= 1
    assert abs(dominant_hz(out.astype(np.float64), TELEPHONY_RATE) - 1000) < 2


def test_bad_input_is_refused() -> None:
    broken = sine(1000, 0.1)
    broken[10] = np.nan
    with pytest.raises(CorruptAudio):
        to_telephony(broken, CD)
    broken[10] = np.inf
    with pytest.raises(CorruptAudio):
        to_telephony(broken, CD)
    with pytest.raises(ValueError):
        to_telephony(sine(1000, 0.1), 0)
    with pytest.raises(TypeError):
        to_telephony(np.zeros(10, dtype=np.int32), CD)  # type: ignore[arg-type]


def test_helpers() -> None:
    assert peak_dbfs(np.array([16384, -8192], dtype=np.int16)) == pytest.approx(-6.0206, abs=1e-3)
    assert peak_dbfs(np.array([0.5], dtype=np.float32)) == pytest.approx(-6.0206, abs=1e-3)
    # A full-scale 1 kHz sine reads about -3 LUFS (BS.1770's calibration).
    assert loudness_lufs(sine(1000, 2.0, 48000, 1.0), 48000) == pytest.approx(-3.01, abs=0.1)


@pytest.mark.parametrize(
    ("source", "rate"),
    [
        (speech_like(3.3, 8000), 8000),
        (sine(1000, 2.0, 48000, 1.0), 48000),
        (np.stack([speech_like(2.0, 16000, 1), 0.3 * speech_like(2.0, 16000, 2)], axis=1), 16000),
        (np.concatenate([speech_like(1, 8000), np.zeros(16000, np.float32), sine(300, 1, 8000, 0.01)]), 8000),
    ],
)
def test_loudness_matches_pyloudnorm(source: npt.NDArray[np.float32], rate: int) -> None:
    expected = pyloudnorm.Meter(rate).integrated_loudness(source.astype(np.float64))
    assert loudness_lufs(source, rate) == pytest.approx(expected, abs=1e-6)


def test_normalisation_can_be_turned_off_for_level_sensitive_analysis() -> None:
    import dataclasses

    from audio.settings import TelephonySettings

    tone = 0.01 * np.sin(2 * np.pi * 1000 * np.arange(8000) / 8000)
    quiet = dataclasses.replace(TelephonySettings(), normalize=False)
    out = to_telephony(tone, 8000, quiet)
    assert abs(int(np.abs(out[2000:]).max()) - round(0.01 * 32768)) <= 3  # after the high-pass settles
    assert np.abs(to_telephony(tone, 8000)).max() > 10 * np.abs(out).max()
