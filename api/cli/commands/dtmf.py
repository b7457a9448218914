"""`ivrgate dtmf FILE`: list the in-band DTMF digits of an audio file, one `<digit> <start> <end>` line each.

    ivrgate dtmf recording.wav
    5 0.000 0.100
    # 0.200 0.300

The file is decoded (any format audio.decode reads), mixed to mono and resampled to 8 kHz without
loudness normalisation: DTMF levels are absolute (dBm0), so the audio is analysed at the level it has.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt

from api.core.settings import Settings
from audio.decode import decode_mono
from audio.dtmf import detect
from audio.telephony import to_telephony


def register(subparsers: Any) -> None:
    """Add the `dtmf` sub-command."""
    parser = subparsers.add_parser("dtmf", help="detect DTMF digits in an audio file")
    parser.add_argument("file", metavar="FILE", help="audio file (wav, mp3, flac, ogg, ...)")
    parser.set_defaults(func=run)


def telephony_pcm(path: str, settings: Settings) -> npt.NDArray[np.int16]:
    """The file as 8 kHz mono int16 at its own level (no normalisation, no trimming)."""
    decoded = decode_mono(path, settings.decode)
    analysis = dataclasses.replace(settings.telephony, normalize=False, trim_silence=False)
    return to_telephony(decoded.samples, decoded.rate, analysis)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print one line per digit; exit status 0 (also when there are none)."""
    for digit in detect(telephony_pcm(args.file, settings)):
        print(f"{digit.digit} {digit.start_s:.3f} {digit.end_s:.3f}")
    return 0
