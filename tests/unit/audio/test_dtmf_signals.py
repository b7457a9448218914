"""Signals for the DTMF tests and bench: dual tones with independent errors, noise, speech and music.

The helpers live here (and are tested here) so that test_dtmf.py, test_dtmf_talkoff.py and
tests/bench/bench_dtmf.py build their signals the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soxr

from audio.dtmf import COL_HZ, KEYPAD, ROW_HZ, dbm0_to_amplitude, power_to_dbm0

RATE = 8000
Pcm = npt.NDArray[np.int16]


def dual_tone(
    digit: str,
    ms: float,
    *,
    low_dbm0: float = -10.0,
    high_dbm0: float | None = None,
    low_error: float = 0.0,
    high_error: float = 0.0,
    rng: np.random.Generator | None = None,
) -> npt.NDArray[np.float64]:
    """One digit's tone pair (float samples), each tone with its own level, error and a random phase."""
    row = next(i for i, keys in enumerate(KEYPAD) if digit in keys)
    col = KEYPAD[row].index(digit)
    rng = rng or np.random.default_rng(0)
    t = np.arange(round(RATE * ms / 1000)) / RATE
    high = low_dbm0 if high_dbm0 is None else high_dbm0
    lo = dbm0_to_amplitude(low_dbm0) * np.sin(
        2 * np.pi * ROW_HZ[row] * (1 + low_error) * t + rng.uniform(0, 7)
    )
    hi = dbm0_to_amplitude(high) * np.sin(2 * np.pi * COL_HZ[col] * (1 + high_error) * t + rng.uniform(0, 7))
    return lo + hi


def to_pcm(x: npt.NDArray[np.float64]) -> Pcm:
    """Round and clip to int16, as a line would."""
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def with_noise(
    x: npt.NDArray[np.float64], snr_db: float, signal_power: float, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """x plus white Gaussian noise whose power is `snr_db` below `signal_power`."""
    return x + rng.normal(0.0, np.sqrt(signal_power / 10 ** (snr_db / 10)), len(x))


# --- speech -------------------------------------------------------------------------------------------

_EN = {
    "names": ["Margaret", "Oliver", "Dr. Okafor", "Theodore", "Lucía", "Mr. Nakamura", "Eleanor", "Ramón"],
    "things": ["appointment", "delivery", "prescription", "account", "reservation", "payment", "order"],
    "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "frames": [
        "Hello {name}, this is a reminder about your {thing} on {day} at {hour} {ampm}.",
        "Your {thing} number is {number}. Again, {number}.",
        "Please call us back at {phone} before {day}.",
        "Press one to confirm, two to cancel, or nine to hear this message again.",
        "The balance on your {thing} is {number} dollars and {small} cents.",
        "Oooh, {name}, sooo good to heeear from you, weeell, aaalright.",
        "Mmm, hmm, yes, noooo, we'll see you on {day} the {small}th.",
        "Our office is open from {hour} to {hour2}, {day} through {day2}.",
    ],
}
_ES = {
    "names": ["María José", "Alejandro", "la doctora Ruiz", "Guadalupe", "Joaquín", "Beatriz", "Fernando"],
    "things": ["cita", "entrega", "receta", "cuenta", "reservación", "pago", "pedido"],
    "days": ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"],
    "frames": [
        "Hola {name}, le recordamos su {thing} del {day} a las {hour}.",
        "El número de su {thing} es {number}. Repito, {number}.",
        "Por favor llámenos al {phone} antes del {day}.",
        "Oprima uno para confirmar, dos para cancelar, o nueve para repetir este mensaje.",
        "El saldo de su {thing} es de {number} pesos con {small} centavos.",
        "Aaay {name}, queeé bueeeno, muuuy bien, claaaro que sííí.",
        "Mmm, sí, nooo, lo esperamos el {day} {small} a las {hour2}.",
        "Nuestra oficina abre de {hour} a {hour2}, de {day} a {day2}.",
    ],
}


def sentences(rng: np.random.Generator, language: str, count: int) -> list[str]:
    """`count` seeded sentences (names, numbers, phone numbers, long vowels) in 'us' or 'es'."""
    words = _EN if language == "us" else _ES
    out = []
    for _ in range(count):
        frame = words["frames"][rng.integers(len(words["frames"]))]
        out.append(
            frame.format(
                name=rng.choice(words["names"]),
                thing=rng.choice(words["things"]),
                day=rng.choice(words["days"]),
                day2=rng.choice(words["days"]),
                hour=int(rng.integers(1, 13)),
                hour2=int(rng.integers(1, 13)),
                ampm=rng.choice(["a m", "p m"]),
                number=int(rng.integers(10, 10**6)),
                small=int(rng.integers(1, 31)),
                phone=" ".join(str(int(d)) for d in rng.integers(0, 10, 10)),
            )
        )
    return out


SPEECH_VOICES = [
    # (engine, language, gender, rate_wpm, pitch, voice override)
    ("espeak", "us", "female", 160, 50, None),
    ("espeak", "us", "male", 160, 50, None),
    ("espeak", "es", "female", 160, 50, None),
    ("espeak", "es", "male", 160, 50, None),
    ("espeak", "us", "female", 120, 80, "en-us+f4"),
    ("espeak", "us", "male", 220, 20, "en-us+m1"),
    ("espeak", "es", "female", 200, 85, "es-419+f2"),
    ("espeak", "es", "male", 120, 30, "es+m1"),
    ("flite", "us", "female", 160, 50, None),
    ("flite", "us", "male", 160, 50, None),
]


def render_speech(
    cache_dir: Path, sentences_per_voice: int = 22, seed: int = 7
) -> list[tuple[str, npt.NDArray[np.float64]]]:
    """Speech of every voice above at 8 kHz, rendered once into `cache_dir` (.npy files) and reused.

    Voices whose engine is missing (flite not on PATH) are left out.
    """
    from tts.base import Voice
    from tts.errors import TTSError
    from tts.settings import TTSSettings

    out = []
    for engine, lang, gender, wpm, pitch, override in SPEECH_VOICES:
        label = f"{engine}-{lang}-{gender}-{wpm}-{pitch}-{override or 'default'}"
        path = cache_dir / f"{label}-{sentences_per_voice}-{seed}.npy"
        if not path.exists():
            voices = {f"{lang}-{gender}": override} if override else {}
            settings = TTSSettings(rate_wpm=wpm, pitch=pitch, voices=voices)
            try:
                tts = _engine(engine, settings)
            except TTSError:
                continue
            rng = np.random.default_rng([seed, len(out)])
            text = " ".join(sentences(rng, lang, sentences_per_voice))
            speech = tts.synthesize(text, Voice(lang, gender))  # type: ignore[arg-type]
            pcm = soxr.resample(speech.pcm.astype(np.float64), speech.rate, RATE)
            np.save(path, pcm)
        out.append((label, np.load(path)))
    return [(label, x) for label, x in out]


def _engine(name: str, settings: object) -> object:
    if name == "espeak":
        from tts.espeak import EspeakEngine

        return EspeakEngine(settings)  # type: ignore[arg-type]
    from tts.flite import FliteEngine

    return FliteEngine(settings)  # type: ignore[arg-type]


def at_level(x: npt.NDArray[np.float64], rms_dbm0: float) -> Pcm:
    """x scaled so its mean power is a sine's at `rms_dbm0` (loud levels clip, like a hot line)."""
    power = float(np.mean(x * x)) or 1.0
    target = dbm0_to_amplitude(rms_dbm0) ** 2 / 2
    return to_pcm(x * np.sqrt(target / power))


# --- music-like signals -------------------------------------------------------------------------------


def _note(
    hz: float, n: int, harmonics: npt.NDArray[np.float64], rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    t = np.arange(n) / RATE
    vibrato = 1 + 0.004 * np.sin(2 * np.pi * rng.uniform(4, 7) * t)
    phase = 2 * np.pi * hz * np.cumsum(vibrato) / RATE
    out = np.zeros(n)
    for k, amp in enumerate(harmonics, start=1):
        if hz * k < RATE / 2 - 100:
            out += amp * np.sin(k * phase + rng.uniform(0, 7))
    attack = np.minimum(1.0, np.arange(n) / (0.02 * RATE))
    return out * attack * np.exp(-np.arange(n) / (rng.uniform(0.3, 1.5) * RATE))


def _midi_hz(note: int) -> float:
    return float(440.0 * 2 ** ((note - 69) / 12))


def music(rng: np.random.Generator, seconds: float) -> list[tuple[str, npt.NDArray[np.float64]]]:
    """Music-like signals of about `seconds` each: harmonic melodies and two-voice lines, chords,
    pure-tone triads, sweeps (single, and dual sweeps faster than 1 kHz/s) and noise bursts."""
    n = int(seconds * RATE)
    return [
        ("melody, sawtooth-like", _line(rng, n, 1 / np.arange(1, 9), voices=1)),
        ("two voices, square-like", _line(rng, n, np.array([1, 0, 1 / 3, 0, 1 / 5, 0, 1 / 7]), voices=2)),
        ("two voices, voice-like", _line(rng, n, np.array([1, 0.8, 0.6, 0.5, 0.3, 0.2]), voices=2)),
        ("chords, four notes", _chords(rng, n, 1 / np.arange(1, 6) ** 1.5, notes=4)),
        ("pure-tone triads", _chords(rng, n, np.array([1.0]), notes=3)),
        ("sweeps", _sweeps(rng, n)),
        ("noise bursts", _bursts(rng, n)),
    ]


def _line(
    rng: np.random.Generator, n: int, harmonics: npt.NDArray[np.float64], voices: int
) -> npt.NDArray[np.float64]:
    out = np.zeros(n)
    for _ in range(voices):
        pos = 0
        while pos < n:
            length = int(rng.uniform(0.08, 0.6) * RATE)
            hz = _midi_hz(int(rng.integers(55, 92)))
            seg = _note(hz, min(length, n - pos), harmonics, rng)
            out[pos : pos + len(seg)] += seg
            pos += length
    return out


def _chords(
    rng: np.random.Generator, n: int, harmonics: npt.NDArray[np.float64], notes: int
) -> npt.NDArray[np.float64]:
    out = np.zeros(n)
    pos = 0
    while pos < n:
        length = min(int(rng.uniform(0.2, 1.0) * RATE), n - pos)
        root = int(rng.integers(52, 84))
        for step in rng.choice([0, 3, 4, 7, 10, 12, 16, 19], notes, replace=False):
            out[pos : pos + length] += _note(_midi_hz(root + int(step)), length, harmonics, rng)
        pos += length
    return out


def _sweeps(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    out = np.zeros(n)
    pos = 0
    while pos < n:
        length = min(int(rng.uniform(0.3, 2.0) * RATE), n - pos)
        t = np.arange(length) / RATE
        f0, f1 = rng.uniform(300, 3400, 2)
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * t[-1] + 1e-9))
        seg = np.sin(phase)
        if rng.random() < 0.5:  # two sweeps at once, each at least 3 kHz/s fast (slower pairs are DTMF)
            length = min(length, int(0.9 * RATE))
            t = t[:length]
            f0, g0 = rng.uniform(300, 3400, 2)
            f1, g1 = (f + rng.choice([-1, 1]) * 3000 * t[-1] * rng.uniform(1, 2) for f in (f0, g0))
            seg = sum(
                np.sin(2 * np.pi * (a * t + (b - a) * t * t / (2 * t[-1]))) for a, b in ((f0, f1), (g0, g1))
            )
        out[pos : pos + length] = seg
        pos += length
    return out


def _bursts(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    out = np.zeros(n)
    pos = 0
    while pos < n:
        length = min(int(rng.uniform(0.01, 0.5) * RATE), n - pos)
        noise = rng.normal(0, 1, length)
        if rng.random() < 0.5:  # band-limited: a running mean colours it
            width = int(rng.integers(2, 6))
            noise = np.convolve(noise, np.ones(width) / width, mode="same")
        out[pos : pos + length] = noise * rng.uniform(0.1, 1.0)
        pos += length + int(rng.uniform(0, 0.3) * RATE)
    return out


# --- tests of the helpers themselves ---------------------------------------------------------------


def test_dual_tone_levels_are_per_tone_dbm0() -> None:
    x = dual_tone("5", 1000, low_dbm0=-10, high_dbm0=-20)
    spectrum = np.abs(np.fft.rfft(x)) ** 2 * 2 / len(x) ** 2
    low = spectrum[770]  # 1 Hz bins for a one-second signal
    high = spectrum[1336]
    assert power_to_dbm0(low) == pytest.approx(-10, abs=0.01)
    assert power_to_dbm0(high) == pytest.approx(-20, abs=0.01)


def test_with_noise_has_the_asked_snr() -> None:
    rng = np.random.default_rng(3)
    x = dual_tone("1", 2000)
    power = float(np.mean(x * x))
    noise = with_noise(x, 15.0, power, rng) - x
    assert 10 * np.log10(power / np.mean(noise * noise)) == pytest.approx(15.0, abs=0.1)


def test_sentences_are_seeded_and_varied() -> None:
    a = sentences(np.random.default_rng(1), "es", 20)
    assert a == sentences(np.random.default_rng(1), "es", 20)
    assert len(set(a)) > 10
