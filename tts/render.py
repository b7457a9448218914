"""Text to speech in one call: validate, normalise, look up the segment cache, synthesise, store.

The cache key is (engine name, engine.cache_key(voice), normalised text), so anything that changes
the sound (engine version, voice, rate, pitch) renders anew, and texts that normalise alike
("9am", "9 a.m.") share an entry. Entries are WAV files at the engine's own rate; the prompt layer
converts to 8 kHz.
"""

from __future__ import annotations

import logging

from audio.wav import read_wav, wav_bytes
from tts.base import Speech, Voice
from tts.cache import EntryTooLarge, SegmentCache
from tts.normalize import normalize, validate_text
from tts.registry import get_engine
from tts.settings import TTSSettings

log = logging.getLogger(__name__)


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
    """A mono 16-bit WAV file holding `speech` (audio.wav's layout)."""
    return wav_bytes(speech.pcm, speech.rate)


def speech_from_wav(data: bytes) -> Speech:
    """The Speech in a mono 16-bit WAV file (as speech_to_wav writes); ValueError otherwise."""
    pcm, rate = read_wav(data)
    return Speech(pcm=pcm, rate=rate)


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
