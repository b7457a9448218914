"""Prompts: an ordered list of segments (text to speak, a voice URL, an uploaded file) -> one telephony WAV.

Every voice job plays one WAV: 16-bit 8 kHz mono, as the seed promises. A prompt is rendered once and
kept under `<cache_dir>/prompts/`, named by a sha256 that covers everything that shapes the audio: each text
with its voice, the sha256 of each fetched or uploaded file, and the TTS, telephony and assembly settings.
Any node can rebuild a prompt from the same inputs, and a repeated prompt costs a hash and a stat. The
prompt cache is the TTS segment cache's mechanism (tts.cache.SegmentCache: capped in bytes, least recently
used evicted) under `<cache_dir>/prompts/ab/cdef....wav`, capped by prompt.cache_max_bytes.

A prompt lasts at most prompt.max_seconds: a lower bound of its length (its texts spoken at
MAX_CHARS_PER_SECOND, the gaps, the audio whose length is known) is checked before anything is rendered,
the running length while segments are rendered, and the assembled audio always.

URL segments are fetched on every render (once per distinct URL), because their bytes are part of the key;
the service fetches at submission and hands the stored bytes in as AudioSegment, so calls never refetch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import wave
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from audio import TELEPHONY_RATE
from audio.assemble import assemble
from audio.decode import decode_mono
from audio.errors import AudioTooLarge, EmptyAudio
from audio.settings import AssembleSettings, DecodeLimits, TelephonySettings
from audio.telephony import to_telephony
from audio.wav import wav_bytes
from ivr.errors import InvalidPromptSpec, PromptTooLong, UrlRefused
from ivr.fetch import Fetched, UrlFetcher
from ivr.settings import FetchSettings, PromptSettings
from tts.base import GENDERS, LANGUAGES, Voice
from tts.cache import SegmentCache
from tts.engine_io import REFERENCE_WPM
from tts.normalize import validate_text
from tts.registry import get_engine
from tts.render import render_speech
from tts.settings import TTSSettings

log = logging.getLogger(__name__)

KEY_VERSION = 1
"""Bumped whenever rendering changes in a way the settings do not capture, so old cached prompts retire."""
MAX_SEGMENTS = 32
"""Segments in one prompt; the seed's examples use three."""

MAX_CHARS_PER_SECOND = 30.0
"""Faster than any voice speaks at the default rate (espeak at 160 wpm speaks about 15 characters a
second), so text / MAX_CHARS_PER_SECOND is a lower bound of its spoken length; scaled up for a faster
tts.rate_wpm (relative to the engines' natural speed, tts.engine_io.REFERENCE_WPM)."""

DEFAULT_VOICE = Voice()
"""The seed's default voice: English (us), female."""

_URL_PREFIXES = ("http://", "https://")
_OTHER_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


@dataclass(frozen=True)
class TextSegment:
    """Text to speak; `voice` overrides the prompt's voice for this segment."""

    text: str
    voice: Voice | None = None


@dataclass(frozen=True)
class UrlSegment:
    """A voice file to fetch (ivr.fetch's rules apply)."""

    url: str


@dataclass(frozen=True)
class AudioSegment:
    """A voice file given as bytes (an upload, a stored blob) or as a local path; `name` labels errors."""

    data: bytes | None = None
    path: Path | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if (self.data is None) == (self.path is None):
            raise InvalidPromptSpec("an audio segment needs exactly one of data and path")


Segment = TextSegment | UrlSegment | AudioSegment


@dataclass(frozen=True)
class PromptSpec:
    """What a prompt says, in order, and the default voice of its text segments."""

    segments: tuple[Segment, ...]
    voice: Voice = DEFAULT_VOICE

    def __post_init__(self) -> None:
        if not self.segments:
            raise InvalidPromptSpec("a prompt needs at least one segment")
        if len(self.segments) > MAX_SEGMENTS:
            raise InvalidPromptSpec(f"a prompt has at most {MAX_SEGMENTS} segments, not {len(self.segments)}")


@dataclass(frozen=True)
class RenderedPrompt:
    """A prompt on disk: the WAV's path, its length, its content key, and whether it was already there."""

    path: Path
    duration_s: float
    sha256: str
    cached: bool


class Fetcher(Protocol):
    """What the renderer needs of a URL fetcher (ivr.fetch.UrlFetcher)."""

    def fetch(self, url: str) -> Fetched: ...


# --- building specs ------------------------------------------------------------------------------------


def make_voice(language: object = None, gender: object = None, default: Voice = DEFAULT_VOICE) -> Voice:
    """The seed's `language` (us | es) and `gender` (male | female), each falling back to `default`'s."""
    language = default.language if language in (None, "") else language
    gender = default.gender if gender in (None, "") else gender
    if language not in LANGUAGES:
        raise InvalidPromptSpec(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    if gender not in GENDERS:
        raise InvalidPromptSpec(f"gender must be one of {', '.join(GENDERS)}, not {gender!r}")
    return Voice(language=language, gender=gender)


def segment_from_item(item: object, index: int = 0) -> Segment:
    """One `msg` item of matrix_vtts: an http(s) URL is fetched, any other non-empty string is spoken."""
    if not isinstance(item, str) or not item.strip():
        raise InvalidPromptSpec(f"msg item {index} must be a non-empty string, not {item!r:.60}")
    text = item.strip()
    if text.lower().startswith(_URL_PREFIXES):
        return UrlSegment(text)
    if _OTHER_SCHEME.match(text):
        raise UrlRefused(f"msg item {index}: only http and https URLs are fetched ({text:.60})")
    return TextSegment(text)


def spec_from_vtts(msg: object, voice: Voice = DEFAULT_VOICE) -> PromptSpec:
    """The PromptSpec of a matrix_vtts `msg` list; InvalidPromptSpec (520) for anything else."""
    if not isinstance(msg, list) or not msg:
        raise InvalidPromptSpec("msg must be a non-empty list of URLs and texts")
    return PromptSpec(tuple(segment_from_item(item, i) for i, item in enumerate(msg)), voice)


def spec_from_json(document: object, default: Voice = DEFAULT_VOICE) -> PromptSpec:
    """A vtts-style object {"msg": [...], "language": ..., "gender": ...} or a bare msg list."""
    if isinstance(document, list):
        return spec_from_vtts(document, default)
    if not isinstance(document, dict):
        raise InvalidPromptSpec("expected an object with a msg list, or a list")
    if "msg" not in document:
        raise InvalidPromptSpec("the object has no msg list")
    voice = make_voice(document.get("language"), document.get("gender"), default)
    return spec_from_vtts(document["msg"], voice)


# --- keys ----------------------------------------------------------------------------------------------


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def prompt_key(
    spec: PromptSpec,
    digests: Mapping[int, str],
    *,
    tts: TTSSettings,
    telephony: TelephonySettings,
    assemble_settings: AssembleSettings,
    voice_key: Callable[[Voice], str] | None = None,
) -> str:
    """The content hash naming a rendered prompt. `digests[i]` is the sha256 of the bytes behind segment i
    for every URL or audio segment (texts are hashed as they are, with the voice that speaks them).
    `voice_key` is the TTS engine's cache_key (its version, voice name, rate, pitch), so an engine upgrade
    retires old prompts; without it the TTS settings stand in for it."""
    parts: list[list[str]] = []
    for index, segment in enumerate(spec.segments):
        if isinstance(segment, TextSegment):
            voice = segment.voice or spec.voice
            engine = voice_key(voice) if voice_key is not None else ""
            parts.append(["text", voice.language, voice.gender, engine, segment.text])
        else:
            parts.append(["audio", digests[index]])
    document = {
        "version": KEY_VERSION,
        "segments": parts,
        "tts": {"engine": tts.engine, "rate": tts.rate_wpm, "pitch": tts.pitch, "voices": tts.voices},
        "telephony": asdict(telephony),
        "assemble": asdict(assemble_settings),
    }
    return sha256_hex(json.dumps(document, sort_keys=True, ensure_ascii=False).encode())


# --- length ------------------------------------------------------------------------------------------


def min_prompt_seconds(
    spec: PromptSpec, assemble_settings: AssembleSettings, tts: TTSSettings, audio_seconds: float = 0.0
) -> float:
    """A lower bound of the rendered length of `spec`: its texts at MAX_CHARS_PER_SECOND (more when
    tts.rate_wpm is faster than the engines' natural speed), the lead, tail and gaps, and `audio_seconds`
    (the length of its audio segments, as far as the caller knows it)."""
    text_chars = sum(len(segment.text) for segment in spec.segments if isinstance(segment, TextSegment))
    chars_per_second = MAX_CHARS_PER_SECOND * max(1.0, tts.rate_wpm / REFERENCE_WPM)
    gaps_ms = assemble_settings.lead_ms + assemble_settings.tail_ms
    gaps_ms += assemble_settings.gap_ms * (len(spec.segments) - 1)
    return text_chars / chars_per_second + gaps_ms / 1000 + audio_seconds


def check_prompt_seconds(seconds: float, settings: PromptSettings, *, estimated: bool = False) -> None:
    """PromptTooLong when `seconds` (a lower bound when `estimated`) passes settings.max_seconds."""
    if seconds > settings.max_seconds:
        what = "would last at least" if estimated else "lasts"
        limit = settings.max_seconds
        raise PromptTooLong(f"the prompt {what} {seconds:.0f} s, more than the {limit:g} s allowed")


# --- rendering -----------------------------------------------------------------------------------------


class PromptRenderer:
    """Renders PromptSpecs to telephony WAVs under `<cache_dir>/prompts`, TTS segments cached under
    `<cache_dir>/tts`, both capped in size (least recently used evicted). Safe to share between threads;
    several processes may share one cache_dir (files are written atomically, the caps are kept under a
    lock, and the same key always holds the same audio)."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        fetcher: Fetcher | None = None,
        decode_limits: DecodeLimits | None = None,
        telephony: TelephonySettings | None = None,
        assemble_settings: AssembleSettings | None = None,
        tts: TTSSettings | None = None,
        prompt: PromptSettings | None = None,
    ) -> None:
        tts = tts or TTSSettings()
        self._prompt = prompt or PromptSettings()
        self.prompt_dir = Path(cache_dir) / "prompts"
        self.prompt_cache = SegmentCache(self.prompt_dir, self._prompt.cache_max_bytes)
        self.segment_cache = SegmentCache(Path(cache_dir) / "tts", tts.cache_max_bytes)
        self._fetcher = fetcher if fetcher is not None else UrlFetcher(FetchSettings())
        self._limits = decode_limits or DecodeLimits()
        self._telephony = telephony or TelephonySettings()
        self._assemble = assemble_settings or AssembleSettings()
        self._tts = tts

    def key(self, spec: PromptSpec, digests: Mapping[int, str]) -> str:
        """prompt_key under this renderer's settings."""
        return prompt_key(
            spec,
            digests,
            tts=self._tts,
            telephony=self._telephony,
            assemble_settings=self._assemble,
            voice_key=get_engine(self._tts).cache_key if _has_text(spec) else None,
        )

    def render(self, spec: PromptSpec) -> RenderedPrompt:
        """The prompt's WAV, rendered now or found in the cache. Raises the audio, TTS and fetch errors
        of its segments unchanged (each carries its status code and text), PromptTooLong past
        prompt.max_seconds (before rendering when its texts already say so)."""
        for segment in spec.segments:  # refuse bad text before fetching anything
            if isinstance(segment, TextSegment):
                validate_text(segment.text, self._tts.max_text_chars)
        estimate = min_prompt_seconds(spec, self._assemble, self._tts)
        check_prompt_seconds(estimate, self._prompt, estimated=True)
        blobs = self._load_audio(spec)
        key = self.key(spec, {i: sha256_hex(data) for i, data in blobs.items()})
        path = self.prompt_cache.lookup(key)
        duration = _wav_seconds(path) if path is not None else None
        if path is not None and duration is not None:
            return RenderedPrompt(path=path, duration_s=duration, sha256=key, cached=True)
        pcm = assemble(self._segments_pcm(spec, blobs), self._assemble)
        duration = len(pcm) / TELEPHONY_RATE
        check_prompt_seconds(duration, self._prompt)
        path = self.prompt_cache.put(key, wav_bytes(pcm, TELEPHONY_RATE))
        log.info("rendered prompt %s: %d segments, %.2f s", key[:12], len(spec.segments), duration)
        return RenderedPrompt(path=path, duration_s=duration, sha256=key, cached=False)

    def _segments_pcm(self, spec: PromptSpec, blobs: Mapping[int, bytes]) -> list[npt.NDArray[np.int16]]:
        """Every segment as telephony audio, refusing the prompt as soon as they pass max_seconds."""
        pcms: list[npt.NDArray[np.int16]] = []
        samples = 0
        for index in range(len(spec.segments)):
            pcms.append(self._segment_pcm(spec, index, blobs))
            samples += len(pcms[-1])
            check_prompt_seconds(samples / TELEPHONY_RATE, self._prompt)
        return pcms

    def _load_audio(self, spec: PromptSpec) -> dict[int, bytes]:
        """The bytes behind every URL and audio segment, fetching each distinct URL once."""
        fetched: dict[str, bytes] = {}
        blobs: dict[int, bytes] = {}
        for index, segment in enumerate(spec.segments):
            if isinstance(segment, UrlSegment):
                if segment.url not in fetched:
                    fetched[segment.url] = self._fetcher.fetch(segment.url).data
                blobs[index] = fetched[segment.url]
            elif isinstance(segment, AudioSegment):
                blobs[index] = segment.data if segment.data is not None else self._read(segment)
        return blobs

    def _read(self, segment: AudioSegment) -> bytes:
        assert segment.path is not None
        name = segment.name or str(segment.path)
        try:
            size = segment.path.stat().st_size
            if size > self._limits.max_bytes:
                raise AudioTooLarge(f"{name}: {size} bytes, more than {self._limits.max_bytes}")
            return segment.path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            raise EmptyAudio(f"cannot read {name}: {exc.strerror}") from None

    def _segment_pcm(self, spec: PromptSpec, index: int, blobs: Mapping[int, bytes]) -> npt.NDArray[np.int16]:
        segment = spec.segments[index]
        if isinstance(segment, TextSegment):
            speech = render_speech(segment.text, segment.voice or spec.voice, self._tts, self.segment_cache)
            return to_telephony(speech.pcm, speech.rate, self._telephony)
        decoded = decode_mono(blobs[index], self._limits)
        return to_telephony(decoded.samples, decoded.rate, self._telephony)


def _has_text(spec: PromptSpec) -> bool:
    return any(isinstance(segment, TextSegment) for segment in spec.segments)


def _wav_seconds(path: Path) -> float | None:
    """The length of a cached prompt from its header, or None when it is missing or unreadable."""
    try:
        with wave.open(str(path), "rb") as reader:
            return reader.getnframes() / reader.getframerate()
    except (FileNotFoundError, wave.Error, EOFError):
        return None
