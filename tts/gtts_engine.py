"""gTTS (Google Translate's speech), an optional online engine: `pip install ivrgate[gtts]`.

Every request has a hard deadline, `TTSSettings.gtts_timeout_s`, for the whole synthesis (gTTS sends
one HTTP request per ~100 characters): the request runs on a worker thread and the caller stops
waiting at the deadline, while each HTTP request also carries that timeout so the worker ends too.
When the server cannot be reached, EngineUnavailable('TTS engine unavailable: ...') is raised, and
for `gtts_backoff_s` afterwards requests fail at once instead of waiting again (offline fails fast).

gTTS has one voice per language and no gender: male and female sound the same (documented in
docs/tts.md). English is Google's US English (tld com), Spanish its Mexican Spanish (tld com.mx).
The MP3 it returns is decoded with soundfile (libsndfile reads MP3); the rate is the MP3's (24 kHz).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from tts.base import Speech, Voice
from tts.engine_io import read_speech
from tts.errors import EngineUnavailable, InvalidTTSSetting
from tts.settings import TTSSettings

log = logging.getLogger(__name__)

LANGUAGES: dict[str, tuple[str, str]] = {"us": ("en", "com"), "es": ("es", "com.mx")}
"""Our language -> (gTTS language, Google domain giving the accent)."""
_WORKERS = 4
_UNAVAILABLE = "TTS engine unavailable: "


class GttsEngine:
    """Online speech from gTTS with a hard per-request deadline and a fail-fast back-off."""

    name = "gtts"

    def __init__(
        self, settings: TTSSettings | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        settings = settings or TTSSettings()
        try:
            import gtts
        except ImportError as exc:
            raise EngineUnavailable(_UNAVAILABLE + "gTTS is not installed (pip install gTTS)") from exc
        if settings.gtts_timeout_s <= 0:
            raise InvalidTTSSetting(f"tts.gtts_timeout_s must be positive, not {settings.gtts_timeout_s}")
        self._gtts: Any = gtts
        self.version = str(getattr(gtts, "__version__", "unknown"))
        self._timeout = settings.gtts_timeout_s
        self._backoff = settings.gtts_backoff_s
        self._slow = settings.rate_wpm < 120
        self._clock = clock
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="gtts")

    def synthesize(self, text: str, voice: Voice) -> Speech:
        """Render already-normalised text; EngineUnavailable when the server is not reachable in time."""
        self._check_backoff()
        language, tld = LANGUAGES[voice.language]
        future: Future[bytes] = self._pool.submit(self._fetch_mp3, text, language, tld)
        try:
            mp3 = future.result(timeout=self._timeout)
        except FutureTimeout:
            future.cancel()
            self._mark_down()
            raise EngineUnavailable(f"{_UNAVAILABLE}gTTS gave no answer in {self._timeout} s") from None
        except self._gtts.tts.gTTSError as exc:
            self._mark_down()
            raise EngineUnavailable(f"{_UNAVAILABLE}{exc}") from exc
        return read_speech(mp3, "gTTS returned audio that cannot be decoded")

    def cache_key(self, voice: Voice) -> str:
        """gTTS version, language, accent and speed (gender does not change gTTS output)."""
        language, tld = LANGUAGES[voice.language]
        return f"gtts {self.version}|{language}|{tld}|slow={self._slow}"

    def _fetch_mp3(self, text: str, language: str, tld: str) -> bytes:
        speech = self._gtts.gTTS(text, lang=language, tld=tld, slow=self._slow, timeout=self._timeout)
        buffer = io.BytesIO()
        speech.write_to_fp(buffer)
        return buffer.getvalue()

    def _check_backoff(self) -> None:
        with self._lock:
            remaining = self._down_until - self._clock()
        if remaining > 0:
            raise EngineUnavailable(f"{_UNAVAILABLE}gTTS unreachable, retrying in {remaining:.0f} s")

    def _mark_down(self) -> None:
        with self._lock:
            self._down_until = self._clock() + self._backoff
        log.warning("gTTS unreachable; failing fast for %.0f s", self._backoff)

