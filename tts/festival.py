"""festival, through the Debian `text2wave` script: better English voices than espeak-ng when installed.

Detected at run time (`festival` plus at least one voice package, e.g. festvox-kallpc16k or
festvox-us-slt-hts); absent, asking for it raises EngineUnavailable naming the Debian packages.
Spanish works only when a Spanish festival voice (el_diphone) is installed; otherwise Spanish raises
UnsupportedVoice. The text goes through a temporary file, never a shell; every run has a timeout.

The voice for each language and gender is the first installed one from PREFERRED_VOICES; the
speaking rate maps to festival's Duration_Stretch (rate_wpm 160 = 1.0).
"""

from __future__ import annotations

import logging
import re

from tts.base import Speech, Voice
from tts.engine_io import duration_stretch, find_binary, run_tool, speak_through_files
from tts.errors import UnsupportedVoice
from tts.settings import TTSSettings

log = logging.getLogger(__name__)

PACKAGES = "festival festvox-kallpc16k (male) festvox-us-slt-hts (female)"
PREFERRED_VOICES: dict[str, tuple[str, ...]] = {
    "us-female": ("cmu_us_slt_arctic_hts", "cmu_us_clb_arctic_clunits", "cmu_us_slt_arctic_clunits"),
    "us-male": ("cmu_us_rms_arctic_hts", "cmu_us_bdl_arctic_hts", "cmu_us_awb_arctic_hts",
                "kal_diphone", "ked_diphone"),
    "es-male": ("el_diphone",),
    "es-female": (),
}
_LIST_VOICES = b"(print (voice.list))\n"


class FestivalEngine:
    """Speech from festival's `text2wave` (the voice's own rate: 16 kHz diphones, 32 kHz HTS)."""

    name = "festival"

    def __init__(
        self, settings: TTSSettings | None = None, binary: str = "text2wave", festival: str = "festival"
    ) -> None:
        settings = settings or TTSSettings()
        self._binary = find_binary(binary, PACKAGES)
        self._festival = find_binary(festival, PACKAGES)
        self._timeout = settings.subprocess_timeout_s
        self._stretch = duration_stretch(settings.rate_wpm)
        self._installed = self._list_voices()
        self._voices = self._choose_voices(settings.voices)
        log.info("festival voices: %s", self._voices)

    def _list_voices(self) -> list[str]:
        out = run_tool([self._festival, "--pipe"], self._timeout, stdin=_LIST_VOICES).decode()
        match = re.search(r"\(([^()]*)\)", out)
        return match.group(1).split() if match else []

    def _choose_voices(self, overrides: dict[str, str]) -> dict[str, str]:
        chosen: dict[str, str] = {}
        for key, candidates in PREFERRED_VOICES.items():
            wanted = (overrides[key],) if key in overrides else candidates
            found = next((name for name in wanted if name in self._installed), None)
            if found:
                chosen[key] = found
        return chosen

    def voice_name(self, voice: Voice) -> str:
        """The festival voice that speaks `voice`, or UnsupportedVoice naming what is installed."""
        key = f"{voice.language}-{voice.gender}"
        name = self._voices.get(key)
        if name is None:
            what = "Spanish" if voice.language == "es" else "English"
            raise UnsupportedVoice(
                f"festival has no {what} {voice.gender} voice installed (installed: {self._installed});"
                " use the espeak engine" + (" for Spanish" if voice.language == "es" else "")
            )
        return name

    def synthesize(self, text: str, voice: Voice) -> Speech:
        """Render already-normalised text."""
        setup = f"(begin (voice_{self.voice_name(voice)}) (Parameter.set 'Duration_Stretch {self._stretch}))"
        return speak_through_files(
            text,
            lambda text_file, wav_file: [self._binary, "-eval", setup, "-o", str(wav_file), str(text_file)],
            self._timeout,
            "ivrgate-festival-",
        )

    def cache_key(self, voice: Voice) -> str:
        """Voice and speed (festival's Debian version changes rarely; the voice name pins the sound)."""
        return f"festival|{self.voice_name(voice)}|stretch={self._stretch}"
