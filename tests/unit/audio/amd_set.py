"""The labelled answering-machine set: human pickups, machine greetings (with and without a beep),
silence, music-on-hold-like tones, each clean and with noise at several SNRs.

Speech comes from the espeak-ng engine the project ships, rendered once into a cache directory (.npy)
and reused; everything else is generated from seeded random numbers, so the set is the same on every run.
Shared by tests/unit/audio/test_amd_set.py and tests/bench/bench_amd.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr

from audio.dtmf import dbm0_to_amplitude

RATE = 8000
BEEP_HZ = (440.0, 800.0, 1000.0, 1400.0)
SNRS_DB = (20.0, 10.0)
VOICES = (("us", "female"), ("us", "male"), ("es", "female"), ("es", "male"))

_HELLO = {
    "us": ["Hello?", "Hello.", "Hi!", "Yes?", "Hello, yes?", "Hey."],
    "es": ["¿Hola?", "¿Bueno?", "¿Sí?", "Hola.", "¿Diga?", "¿Aló?"],
}
_SECOND = {
    "us": ["Who is this?", "Anybody there?", "Hello?", "Yes, speaking."],
    "es": ["¿Quién habla?", "¿Hay alguien?", "¿Hola?", "Sí, dígame."],
}
_GREETING = {
    "us": [
        "Hi, you have reached the Miller family.",
        "Sorry we cannot take your call right now.",
        "Please leave your name, your number and a short message after the tone.",
        "We will call you back as soon as we can.",
        "You have reached the office of Doctor Okafor.",
        "Our opening hours are Monday to Friday, from nine in the morning to five in the afternoon.",
        "If this is an emergency, please hang up and dial your local emergency number.",
        "Thank you for calling, and have a wonderful day.",
        "The person you are calling is not available.",
        "At the tone, please record your message.",
    ],
    "es": [
        "Hola, has llamado a la casa de la familia García.",
        "En este momento no podemos atender tu llamada.",
        "Por favor deja tu nombre, tu número y un mensaje breve después del tono.",
        "Te devolveremos la llamada lo antes posible.",
        "Has llamado a la consulta de la doctora Morales.",
        "Nuestro horario es de lunes a viernes, de nueve de la mañana a cinco de la tarde.",
        "Si se trata de una emergencia, cuelga y marca el número de emergencias.",
        "Gracias por llamar, que tengas un buen día.",
        "La persona a la que llamas no está disponible.",
        "Al oír el tono, graba tu mensaje.",
    ],
}

Pcm = npt.NDArray[np.int16]


@dataclass(frozen=True)
class Item:
    """One labelled recording: its class, the expected outcome, and where the beep is (if any)."""

    name: str
    kind: str
    """human | machine | silence | music (noisy items keep their clean item's kind)."""
    expected: str
    """human | machine | unknown."""
    pcm: Pcm
    snr_db: float | None = None
    beep_hz: float | None = None
    beep_start_s: float | None = None
    beep_end_s: float | None = None


class Speaker:
    """espeak-ng at 8 kHz with an on-disk cache keyed by voice and text."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache = cache_dir
        self._engines: dict[tuple[str, str], object] = {}

    def say(self, text: str, lang: str, gender: str) -> npt.NDArray[np.float64]:
        key = f"{lang}-{gender}-{_slug(text)}.npy"
        path = self.cache / key
        if not path.exists():
            from tts.base import Voice
            from tts.espeak import EspeakEngine

            engine = EspeakEngine()
            speech = engine.synthesize(text, Voice(lang, gender))  # type: ignore[arg-type]
            pcm = soxr.resample(speech.pcm.astype(np.float64), speech.rate, RATE)
            np.save(path, _trim(np.asarray(pcm, dtype=np.float64)))
        return np.asarray(np.load(path), dtype=np.float64)


def _slug(text: str) -> str:
    import hashlib

    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _trim(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Drop the leading and trailing near-silence espeak adds."""
    loud = np.flatnonzero(np.abs(x) > 0.02 * (np.max(np.abs(x)) or 1.0))
    return x[loud[0] : loud[-1] + 1] if loud.size else x


def _level(x: npt.NDArray[np.float64], rms_dbm0: float) -> npt.NDArray[np.float64]:
    power = float(np.mean(x * x)) or 1.0
    return x * float(np.sqrt(dbm0_to_amplitude(rms_dbm0) ** 2 / 2 / power))


def _silence(seconds: float) -> npt.NDArray[np.float64]:
    return np.zeros(round(seconds * RATE))


def _pcm(x: npt.NDArray[np.float64]) -> Pcm:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def tone(hz: float, seconds: float, dbm0: float, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """A beep: a sine with 5 ms ramps and a random phase."""
    n = round(seconds * RATE)
    t = np.arange(n) / RATE
    ramp = np.minimum(1.0, np.minimum(np.arange(n), n - 1 - np.arange(n)) / (0.005 * RATE))
    return dbm0_to_amplitude(dbm0) * ramp * np.sin(2 * np.pi * hz * t + rng.uniform(0, 7))


def human(speaker: Speaker, i: int) -> Item:
    rng = np.random.default_rng([11, i])
    lang, gender = VOICES[i % len(VOICES)]
    level = rng.uniform(-22, -10)
    hello = _level(speaker.say(_HELLO[lang][i % 6], lang, gender), level)
    parts = [_silence(rng.uniform(0.2, 1.2)), hello]
    if i % 2:
        second = _level(speaker.say(_SECOND[lang][(i // 2) % 4], lang, gender), level)
        parts += [_silence(rng.uniform(1.0, 1.8)), second]
    parts.append(_silence(4.0))
    return Item(f"human-{i}", "human", "human", _pcm(np.concatenate(parts)))


def machine(speaker: Speaker, i: int) -> Item:
    rng = np.random.default_rng([13, i])
    lang, gender = VOICES[i % len(VOICES)]
    level = rng.uniform(-22, -10)
    target = rng.uniform(4.0, 15.0)
    order = rng.permutation(len(_GREETING[lang]))
    speech: list[npt.NDArray[np.float64]] = []
    k = 0
    while sum(len(x) for x in speech) < target * RATE and k < 3 * len(order):
        if speech:
            speech.append(_silence(rng.uniform(0.15, 0.45)))
        speech.append(speaker.say(_GREETING[lang][order[k % len(order)]], lang, gender))
        k += 1
    greeting = np.concatenate(speech)[: round(target * RATE)]
    parts = [_silence(rng.uniform(0.2, 0.8)), _level(greeting, level), _silence(rng.uniform(0.3, 0.9))]
    beep_hz = None if i % 5 == 4 else BEEP_HZ[i % 4]
    start = end = None
    if beep_hz is not None:
        start = sum(len(x) for x in parts) / RATE
        length = rng.uniform(0.2, 1.0)
        parts.append(tone(beep_hz, length, rng.uniform(-20, -8), rng))
        end = start + length
    parts.append(_silence(3.0))
    return Item(f"machine-{i}", "machine", "machine", _pcm(np.concatenate(parts)), None, beep_hz, start, end)


def silence(i: int) -> Item:
    rng = np.random.default_rng([17, i])
    quiet = rng.normal(0.0, dbm0_to_amplitude(-70.0), round(6 * RATE)) if i % 2 else _silence(6.0)
    return Item(f"silence-{i}", "silence", "unknown", _pcm(quiet))


def music(i: int) -> Item:
    """Music-on-hold-like: a looping melody of notes with harmonics, no pauses, 8 s."""
    rng = np.random.default_rng([19, i])
    out: list[npt.NDArray[np.float64]] = []
    while sum(len(x) for x in out) < 8 * RATE:
        hz = 440.0 * 2 ** (int(rng.integers(-12, 12)) / 12)
        n = round(rng.uniform(0.15, 0.6) * RATE)
        t = np.arange(n) / RATE
        note = sum(
            (0.6**k) * np.sin(2 * np.pi * hz * (k + 1) * t + rng.uniform(0, 7))
            for k in range(4)
            if hz * (k + 1) < 3800
        )
        if i % 2:  # a chord: a third and a fifth above
            note = note + np.sin(2 * np.pi * hz * 1.26 * t) + np.sin(2 * np.pi * hz * 1.5 * t)
        out.append(np.asarray(note, dtype=np.float64) * np.exp(-t / 1.5))
    x = np.concatenate(out)[: 8 * RATE]
    return Item(f"music-{i}", "music", "machine", _pcm(_level(x, rng.uniform(-24, -12))))


def with_noise(item: Item, snr_db: float, seed: int) -> Item:
    """The item plus white noise `snr_db` below the power of its loud part (its voice or tones)."""
    rng = np.random.default_rng([23, seed])
    x = item.pcm.astype(np.float64)
    loud = x[np.abs(x) > 0.05 * (np.max(np.abs(x)) or 1.0)]
    power = float(np.mean(loud * loud)) if loud.size else dbm0_to_amplitude(-30.0) ** 2 / 2
    noisy = x + rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), len(x))
    return Item(
        f"{item.name}-snr{snr_db:g}",
        item.kind,
        item.expected,
        _pcm(noisy),
        snr_db,
        item.beep_hz,
        item.beep_start_s,
        item.beep_end_s,
    )


def build(
    cache_dir: Path,
    humans: int = 24,
    machines: int = 20,
    silences: int = 4,
    musics: int = 4,
    snrs: tuple[float, ...] = SNRS_DB,
) -> list[Item]:
    """The whole set: clean items, then human and machine items again at every SNR in `snrs`."""
    speaker = Speaker(cache_dir)
    clean = (
        [human(speaker, i) for i in range(humans)]
        + [machine(speaker, i) for i in range(machines)]
        + [silence(i) for i in range(silences)]
        + [music(i) for i in range(musics)]
    )
    noisy = [
        with_noise(item, snr, j * 10 + k)
        for j, item in enumerate(clean)
        if item.kind in ("human", "machine")
        for k, snr in enumerate(snrs)
    ]
    return clean + noisy
