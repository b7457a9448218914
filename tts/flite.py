"""flite, the Debian `flite` binary: clearly better English voices than espeak-ng, English only.

Detected at run time; absent, asking for it raises EngineUnavailable naming the Debian package.
The text goes through a temporary file (`-f`), never through a shell; each run has a timeout.

Voices: us female `slt` (CMU ARCTIC, clustergen), us male `rms`. The speaking rate maps to flite's
`duration_stretch` (rate_wpm 160 = 1.0); flite's voices ignore the pitch setting.
"""

from __future__ import annotations

import logging

from tts.base import Speech, Voice
from tts.engine_io import duration_stretch, find_binary, run_tool, speak_through_files
from tts.errors import UnsupportedVoice
from tts.settings import TTSSettings

log = logging.getLogger(__name__)

DEFAULT_VOICES: dict[str, str] = {"us-female": "slt", "us-male": "rms"}


class FliteEngine:
    """English speech from the `flite` binary (16 kHz int16)."""

    name = "flite"

    def __init__(self, settings: TTSSettings | None = None, binary: str = "flite") -> None:
        settings = settings or TTSSettings()
        self._binary = find_binary(binary, "flite")
        self._timeout = settings.subprocess_timeout_s
        self._stretch = duration_stretch(settings.rate_wpm)
        self._voices = {**DEFAULT_VOICES, **settings.voices}
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
        stretch = f"duration_stretch={self._stretch}"
        return speak_through_files(
            text,
            lambda text_file, wav_file: [self._binary, "-voice", name, "--setf", stretch,
                                         "-f", str(text_file), "-o", str(wav_file)],
            self._timeout,
            "ivrgate-flite-",
        )

    def cache_key(self, voice: Voice) -> str:
        """flite version, voice and speed."""
        return f"{self.version}|{self.voice_name(voice)}|stretch={self._stretch}"
