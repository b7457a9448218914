"""flite, the Debian `flite` binary: clearly better English voices than espeak-ng, English only.

Detected at run time; absent, asking for it raises EngineUnavailable naming the Debian package.
The text goes through a temporary file (`-f`), never through a shell; each run has a timeout.

Voices: us female `slt` (CMU ARCTIC, clustergen), us male `rms`. The speaking rate maps to flite's
`duration_stretch` (rate_wpm 160 = 1.0); flite's voices ignore the pitch setting.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile

from tts.base import Speech, Voice
from tts.errors import EngineUnavailable, InvalidTTSSetting, TTSError, UnsupportedVoice
from tts.settings import TTSSettings

log = logging.getLogger(__name__)

DEFAULT_VOICES: dict[str, str] = {"us-female": "slt", "us-male": "rms"}
REFERENCE_WPM = 160
"""The rate_wpm that leaves an engine at its own natural speed."""


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


def read_wav(path: Path) -> Speech:
    """A mono int16 Speech from a WAV file an engine wrote (first channel when it wrote more)."""
    try:
        pcm, rate = soundfile.read(str(path), dtype="int16", always_2d=True)
    except (OSError, RuntimeError) as exc:  # soundfile raises LibsndfileError (a RuntimeError)
        raise TTSError(f"the engine wrote no readable audio: {exc}") from exc
    return Speech(pcm=np.ascontiguousarray(pcm[:, 0], dtype=np.int16), rate=int(rate))


def voice_table(defaults: dict[str, str], settings: TTSSettings) -> dict[str, str]:
    """Default voices overridden by `settings.voices` (only keys this engine knows how to use)."""
    return {**defaults, **settings.voices}


class FliteEngine:
    """English speech from the `flite` binary (16 kHz int16)."""

    name = "flite"

    def __init__(self, settings: TTSSettings | None = None, binary: str = "flite") -> None:
        settings = settings or TTSSettings()
        self._binary = find_binary(binary, "flite")
        self._timeout = settings.subprocess_timeout_s
        self._stretch = duration_stretch(settings.rate_wpm)
        self._voices = voice_table(DEFAULT_VOICES, settings)
        self._installed = self._list_voices()
        about = run_tool([self._binary, "--version"], self._timeout, check=False).decode()
        self.version = next((line.split()[1] for line in about.splitlines() if "version:" in line), "flite")

    def _list_voices(self) -> set[str]:
        listing = run_tool([self._binary, "-lv"], self._timeout).decode()
        return set(listing.partition(":")[2].split())

    def voice_name(self, voice: Voice) -> str:
        """The flite voice that speaks `voice`; UnsupportedVoice for Spanish or a missing voice."""
        if voice.language != "us":
            raise UnsupportedVoice("flite speaks English only; use the espeak engine for Spanish")
        name = self._voices.get(f"{voice.language}-{voice.gender}", "")
        if name not in self._installed and not name.startswith("/"):
            raise UnsupportedVoice(f"flite has no voice {name!r} (installed: {sorted(self._installed)})")
        return name

    def synthesize(self, text: str, voice: Voice) -> Speech:
        """Render already-normalised text."""
        name = self.voice_name(voice)
        with tempfile.TemporaryDirectory(prefix="ivrgate-flite-") as tmp:
            text_file, wav_file = Path(tmp) / "text.txt", Path(tmp) / "speech.wav"
            text_file.write_text(text, encoding="utf-8")
            argv = [self._binary, "-voice", name, "--setf", f"duration_stretch={self._stretch}",
                    "-f", str(text_file), "-o", str(wav_file)]
            run_tool(argv, self._timeout)
            return read_wav(wav_file)

    def cache_key(self, voice: Voice) -> str:
        """flite version, voice and speed."""
        return f"{self.version}|{self.voice_name(voice)}|stretch={self._stretch}"
