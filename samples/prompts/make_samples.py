"""Write samples/prompts/short.wav and short.mp3: a two-second chime, 44.1 kHz stereo.

A rising arpeggio of bell-like notes (a few inharmonic partials, each decaying), panned across the
stereo field: realistic input for `ivrgate prompt`, which must downmix, resample and normalise it.
Run: python samples/prompts/make_samples.py [DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile

RATE = 44100
SECONDS = 2.0
NOTES_HZ = (523.25, 659.25, 783.99, 1046.50)
"""C5, E5, G5, C6."""
PARTIALS = ((1.0, 1.0, 2.5), (2.76, 0.4, 4.0), (5.40, 0.2, 6.0), (8.93, 0.1, 8.0))
"""(frequency ratio, amplitude, decay per second) of each bell partial."""
NOTE_SPACING_S = 0.3
PEAK = 0.7


def bell(hz: float, frames: int) -> npt.NDArray[np.float64]:
    """One struck bell note with a 5 ms attack."""
    t = np.arange(frames) / RATE
    tone = sum(
        amp * np.exp(-decay * t) * np.sin(2 * np.pi * hz * ratio * t) for ratio, amp, decay in PARTIALS
    )
    attack = np.minimum(t / 0.005, 1.0)
    return np.asarray(tone * attack, dtype=np.float64)


def chime() -> npt.NDArray[np.float64]:
    """The jingle: (frames, 2), peak at PEAK, a gentle fade over the last 100 ms."""
    frames = int(RATE * SECONDS)
    out = np.zeros((frames, 2))
    for index, hz in enumerate(NOTES_HZ):
        start = int(index * NOTE_SPACING_S * RATE)
        pan = index / (len(NOTES_HZ) - 1)
        note = bell(hz, frames - start)
        out[start:, 0] += note * np.cos(pan * np.pi / 2)
        out[start:, 1] += note * np.sin(pan * np.pi / 2)
    fade = int(0.1 * RATE)
    out[-fade:] *= np.linspace(1.0, 0.0, fade)[:, None]
    scaled: npt.NDArray[np.float64] = out * (PEAK / np.max(np.abs(out)))
    return scaled


HERE = Path(__file__).resolve().parent


def make_samples(directory: Path = HERE) -> list[Path]:
    """Write short.wav (16-bit PCM) and short.mp3 into `directory`."""
    audio = chime()
    wav, mp3 = directory / "short.wav", directory / "short.mp3"
    soundfile.write(wav, audio, RATE, subtype="PCM_16")
    soundfile.write(mp3, audio, RATE, format="MP3", subtype="MPEG_LAYER_III")
    return [wav, mp3]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for path in make_samples(Path(args[0]) if args else HERE):
        print(f"{path.stat().st_size:7d}  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
