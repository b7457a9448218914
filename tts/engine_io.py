"""What the engines besides espeak share: running a program, and reading the audio an engine produced.

flite and festival run Debian binaries (found at run time, each run without a shell and with a timeout);
they and gTTS hand back audio files (WAV from the binaries, MP3 from gTTS) that soundfile reads.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import soundfile

from tts.base import Speech
from tts.errors import EngineUnavailable, InvalidTTSSetting, TTSError

REFERENCE_WPM = 160
"""The rate_wpm that leaves an engine at its own natural speed."""
WROTE_NO_AUDIO = "the engine wrote no readable audio"
"""read_speech's message for a WAV file a program wrote that cannot be read."""


def find_binary(name: str, package: str) -> str:
    """The absolute path of `name` on PATH, or EngineUnavailable telling which Debian package has it."""
    path = shutil.which(name)
    if path is None:
        raise EngineUnavailable(f"{name} is not installed (Debian package: apt-get install {package})")
    return path


def duration_stretch(rate_wpm: int) -> float:
    """How much longer than natural speech is: REFERENCE_WPM / rate_wpm, within 0.25-4."""
    if not 40 <= rate_wpm <= 640:
        raise InvalidTTSSetting(f"tts.rate_wpm must be 40-640 for this engine, not {rate_wpm}")
    return round(REFERENCE_WPM / rate_wpm, 3)


def run_tool(argv: Sequence[str], timeout_s: float, stdin: bytes | None = None, check: bool = True) -> bytes:
    """Run a program without a shell; its stdout, or TTSError on failure or timeout (it is killed).

    With check=False a non-zero exit status is accepted (`flite --version` exits 1).
    """
    try:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise TTSError(f"{Path(argv[0]).name} took longer than {timeout_s} s and was stopped") from None
    except OSError as exc:
        raise EngineUnavailable(f"{Path(argv[0]).name} cannot run: {exc}") from exc
    if check and done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()[-300:]
        raise TTSError(f"{Path(argv[0]).name} failed ({done.returncode}): {message}")
    return done.stdout


def read_speech(source: Path | bytes, unreadable: str) -> Speech:
    """A mono int16 Speech from an audio file or its bytes (first channel when there are more).

    Raises TTSError("<unreadable>: <why>") when soundfile cannot read it.
    """
    try:
        pcm, rate = soundfile.read(
            io.BytesIO(source) if isinstance(source, bytes) else str(source), dtype="int16", always_2d=True
        )
    except (OSError, RuntimeError) as exc:  # soundfile raises LibsndfileError (a RuntimeError)
        raise TTSError(f"{unreadable}: {exc}") from exc
    return Speech(pcm=np.ascontiguousarray(pcm[:, 0], dtype=np.int16), rate=int(rate))


def speak_through_files(
    text: str, argv: Callable[[Path, Path], Sequence[str]], timeout_s: float, prefix: str
) -> Speech:
    """Write `text` to a temporary file, run `argv(text_file, wav_file)`, and read the WAV it wrote."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        text_file, wav_file = Path(tmp) / "text.txt", Path(tmp) / "speech.wav"
        text_file.write_text(text, encoding="utf-8")
        run_tool(argv(text_file, wav_file), timeout_s)
        return read_speech(wav_file, WROTE_NO_AUDIO)
