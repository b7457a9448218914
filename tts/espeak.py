"""espeak-ng, the default engine: offline, English and Spanish, male and female, pip-only.

The library and its data come from the `espeakng-loader` wheel and are driven through ctypes.
libespeak-ng keeps one global synthesiser per process, so the library is loaded once (lazily, under a
lock) and every synthesis runs under that same lock.

Voices (median F0 measured with an autocorrelation estimate, rate 160 wpm, pitch 50):

| voice | espeak-ng voice | median F0 |
|---|---|---|
| us male | en-us+m3 | ~103 Hz |
| us female | en-us+f3 | ~202 Hz |
| es male | es-419+m3 | ~107 Hz |
| es female | es-419+f3 | ~216 Hz |

Spanish is `es-419` (Latin American): seseo (no /θ/ for c and z) and the intonation a US and
Latin-American audience expects, where `es` would sound Castilian.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from tts.base import Speech, Voice
from tts.errors import EngineUnavailable, InvalidTTSSetting, TTSError, UnsupportedVoice
from tts.settings import TTSSettings

log = logging.getLogger(__name__)

SAMPLE_RATE = 22050
"""What libespeak-ng produces; checked against espeak_Initialize's answer."""

MIN_RATE_WPM = 80
MAX_RATE_WPM = 450
DEFAULT_VOICES: dict[str, str] = {
    "us-male": "en-us+m3",
    "us-female": "en-us+f3",
    "es-male": "es-419+m3",
    "es-female": "es-419+f3",
}

_AUDIO_OUTPUT_SYNCHRONOUS = 0x02
_BUFFER_MS = 500
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3
_EE_OK = 0

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Library:
    """The process's one libespeak-ng: loaded, initialised, and used under `lock` only."""

    def __init__(self, lib_path: str, data_path: str) -> None:
        self.lock = threading.Lock()
        self._lib = ctypes.CDLL(lib_path)
        self._declare()
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data_path.encode(), 0)
        if rate <= 0:
            raise EngineUnavailable(f"espeak-ng failed to initialise ({rate}) with data at {data_path}")
        self.sample_rate = int(rate)
        self._chunks: list[npt.NDArray[np.int16]] = []
        self._callback = _SynthCallback(self._on_audio)  # kept referenced for the library's lifetime
        self._lib.espeak_SetSynthCallback(self._callback)
        self.version: str = self._lib.espeak_Info(None).decode()

    def _declare(self) -> None:
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p

    def _on_audio(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int | None) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).astype(np.int16, copy=True))
        return 0  # 0: go on synthesising

    def synthesize(self, text: str, voice_name: str, rate_wpm: int, pitch: int) -> npt.NDArray[np.int16]:
        """Render `text` with one voice; the caller holds no lock, this method takes it."""
        with self.lock:
            if self._lib.espeak_SetVoiceByName(voice_name.encode()) != _EE_OK:
                raise UnsupportedVoice(f"espeak-ng has no voice {voice_name!r}")
            self._lib.espeak_SetParameter(_PARAM_RATE, rate_wpm, 0)
            self._lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
            self._chunks = []
            data = text.encode("utf-8") + b"\0"
            rc = self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self._lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if rc != _EE_OK:
            raise TTSError(f"espeak-ng synthesis failed ({rc})")
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


_library: _Library | None = None
_library_lock = threading.Lock()


def _default_paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError as exc:
        raise EngineUnavailable("espeak-ng unavailable: the espeakng-loader wheel is not installed") from exc
    return str(espeakng_loader.get_library_path()), str(espeakng_loader.get_data_path())


def load_library(paths: Callable[[], tuple[str, str]] = _default_paths) -> _Library:
    """The process-wide libespeak-ng, loaded on first use. Raises EngineUnavailable when it cannot load."""
    global _library
    with _library_lock:
        if _library is None:
            lib_path, data_path = paths()
            try:
                _library = _Library(lib_path, data_path)
            except OSError as exc:
                raise EngineUnavailable(f"espeak-ng unavailable: {exc}") from exc
            log.info("libespeak-ng %s loaded, %d Hz", _library.version, _library.sample_rate)
        return _library


class EspeakEngine:
    """espeak-ng through ctypes: `Speech` at 22,050 Hz int16, rate and pitch from TTSSettings."""

    name = "espeak"

    def __init__(self, settings: TTSSettings | None = None) -> None:
        settings = settings or TTSSettings()
        if not MIN_RATE_WPM <= settings.rate_wpm <= MAX_RATE_WPM:
            raise InvalidTTSSetting(
                f"tts.rate_wpm must be {MIN_RATE_WPM}-{MAX_RATE_WPM}, not {settings.rate_wpm}"
            )
        if not 0 <= settings.pitch <= 99:
            raise InvalidTTSSetting(f"tts.pitch must be 0-99, not {settings.pitch}")
        self._rate = settings.rate_wpm
        self._pitch = settings.pitch
        self._voices = {**DEFAULT_VOICES, **settings.voices}
        self._library = load_library()

    @property
    def version(self) -> str:
        """libespeak-ng's version string (part of the cache key)."""
        return self._library.version

    def voice_name(self, voice: Voice) -> str:
        """The espeak-ng voice (with its variant) that speaks `voice`."""
        key = f"{voice.language}-{voice.gender}"
        try:
            return self._voices[key]
        except KeyError:
            raise UnsupportedVoice(f"espeak-ng has no voice for {key}") from None

    def synthesize(self, text: str, voice: Voice) -> Speech:
        """Render already-normalised text."""
        pcm = self._library.synthesize(text, self.voice_name(voice), self._rate, self._pitch)
        return Speech(pcm=pcm, rate=self._library.sample_rate)

    def cache_key(self, voice: Voice) -> str:
        """Library version, voice, rate and pitch: everything besides the text that changes the audio."""
        return f"espeak-ng {self.version}|{self.voice_name(voice)}|rate={self._rate}|pitch={self._pitch}"
