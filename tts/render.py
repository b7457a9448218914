"""Text to speech in one call: validate, normalise, look up the segment cache, synthesise, store.

The cache key is (engine name, engine.cache_key(voice), normalised text), so anything that changes
the sound (engine version, voice, rate, pitch) renders anew, and texts that normalise alike
("9am", "9 a.m.") share an entry. Entries are WAV files at the engine's own rate; the prompt layer
converts to 8 kHz.
"""

from __future__ import annotations

import io
import logging
import wave

import numpy as np

from tts.base import Speech, Voice
from tts.cache import EntryTooLarge, SegmentCache
from tts.normalize import normalize, validate_text
from tts.registry import get_engine
from tts.settings import TTSSettings

log = logging.getLogger(__name__)

_SAMPLE_WIDTH = 2


def render_speech(
    text: str, voice: Voice, settings: TTSSettings, cache: SegmentCache | None = None
) -> Speech:
    """Speech for `text` by the engine `settings` name; from `cache` when it was rendered before.

    Raises InvalidText for text that cannot be spoken, and the engine's TTSError subclasses
    (EngineUnavailable, UnsupportedVoice, ...) when it cannot render.
    """
    spoken = normalize(validate_text(text, settings.max_text_chars), voice.language)
    engine = get_engine(settings)
    key = cache.key(engine.name, engine.cache_key(voice), spoken) if cache is not None else ""
    if cache is not None:
        cached = _cached(cache, key)
        if cached is not None:
            return cached
    speech = engine.synthesize(spoken, voice)
    if cache is not None:
        _store(cache, key, speech)
    return speech


def cache_from_settings(settings: TTSSettings) -> SegmentCache | None:
    """The segment cache `settings.cache_dir` names, or None when caching is off."""
    if settings.cache_dir is None:
        return None
    return SegmentCache(settings.cache_dir, settings.cache_max_bytes)


def speech_to_wav(speech: Speech) -> bytes:
    """A mono 16-bit WAV file holding `speech`."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(_SAMPLE_WIDTH)
        out.setframerate(speech.rate)
        out.writeframes(speech.pcm.astype("<i2", copy=False).tobytes())
    return buffer.getvalue()


def speech_from_wav(data: bytes) -> Speech:
    """The Speech in a mono 16-bit WAV file (as speech_to_wav writes); ValueError for anything else."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            if wav.getnchannels() != 1 or wav.getsampwidth() != _SAMPLE_WIDTH:
                raise ValueError("not a mono 16-bit WAV")
            frames = wav.readframes(wav.getnframes())
            rate = wav.getframerate()
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a readable WAV: {exc}") from exc
    if len(frames) % _SAMPLE_WIDTH:
        raise ValueError("truncated WAV")
    return Speech(pcm=np.frombuffer(frames, dtype="<i2").astype(np.int16, copy=False), rate=rate)


def _cached(cache: SegmentCache, key: str) -> Speech | None:
    data = cache.get(key)
    if data is None:
        return None
    try:
        return speech_from_wav(data)
    except ValueError as exc:
        log.warning("segment cache entry %s unreadable (%s); rendering again", key, exc)
        return None


def _store(cache: SegmentCache, key: str, speech: Speech) -> None:
    try:
        cache.put(key, speech_to_wav(speech))
    except (OSError, EntryTooLarge) as exc:
        log.warning("segment not cached: %s", exc)
