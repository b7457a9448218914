"""Any uploaded or fetched audio -> float samples, refusing what is empty, broken, too big or too long.

The format is sniffed from the content, never from a file name. libsndfile (the soundfile wheel)
reads WAV (any PCM width, float, A-law/mu-law), RF64, W64, AIFF, CAF, AU, FLAC, Ogg (Vorbis, Opus) and
MPEG audio (MP3) without any external program. Containers libsndfile cannot read (MP4/M4A, raw AAC,
AMR, WMA, Matroska/WebM) go through pydub and ffmpeg, only when ffmpeg and ffprobe are on PATH.

Limits are enforced before work is done: the byte size before reading or decoding, the duration and the
decoded-sample count (frames x channels, so rate x channels x seconds) from the header before decoding,
and both again while decoding (headers lie, or say "unknown length"). libsndfile formats are decoded in
blocks of BLOCK_FRAMES: decode_mono() mixes each block to mono and resamples it as it arrives (soxr's
streaming resampler), so its memory follows the 8 kHz mono output, not the input's rate and channels.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import soundfile
import soxr

from audio import TELEPHONY_RATE, mpeg
from audio.errors import AudioTooLarge, AudioTooLong, CorruptAudio, EmptyAudio, UnsupportedFormat
from audio.settings import DecodeLimits, TelephonySettings
from audio.telephony import DEFAULT_TELEPHONY, downmix, to_telephony

log = logging.getLogger(__name__)

DEFAULT_LIMITS = DecodeLimits()

SNDFILE_FORMATS = frozenset({"wav", "rf64", "w64", "aiff", "caf", "au", "flac", "ogg", "mp3"})
"""Formats decoded by libsndfile, in-process."""
FFMPEG_FORMATS = {"m4a": "mp4", "aac": "aac", "amr": "amr", "wma": "asf", "webm": "matroska", "mp3": "mp3"}
"""Formats decoded by pydub + ffmpeg, with the ffmpeg demuxer each one needs (MP3 only when libsndfile
cannot tell its length)."""
MAX_FLOAT_MAGNITUDE = 16.0
"""Float samples beyond +-16 (24 dB over full scale) are not audio: the data does not match the header."""
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_WAV_PCM, _WAV_FLOAT, _WAV_EXTENSIBLE = 1, 3, 0xFFFE
_ROUNDING_MARGIN_FRAMES = 1
_WAV_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
TRUNCATION_TOLERANCE = 0.005
"""Audio shorter than its header announces by more than this fraction (and TRUNCATION_MIN_FRAMES) is
refused as truncated."""
TRUNCATION_MIN_FRAMES = 2304
"""Two MPEG layer III frames: encoder delay and padding make a whole MP3 differ from its tag by less."""
BLOCK_FRAMES = 16384
"""Frames read from libsndfile at a time: 512 KiB of float32 for 8 channels."""
UNKNOWN_FRAMES = 2**62
"""libsndfile reports SF_COUNT_MAX frames for a stream of unknown length (a FLAC header with no total)."""


@dataclass(frozen=True)
class Decoded:
    """Decoded audio: float32 samples of shape (frames, channels) in -1..1, their rate, the sniffed format."""

    samples: npt.NDArray[np.float32]
    rate: int
    format: str

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return self.samples.shape[0] / self.rate if self.rate else 0.0


def _mpeg_audio_sync(head: bytes) -> str | None:
    """'mp3' for an MPEG audio frame header (layers I-III), 'aac' for an ADTS header, else None."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    if head[1] & 0xF6 == 0xF0:
        return "aac"
    return "mp3" if mpeg.header_fields(head) is not None else None


def _skip_id3(data: bytes) -> int:
    """Offset of the first byte after any ID3v2 tags at the start of `data`."""
    offset = 0
    while data[offset : offset + 3] == b"ID3" and len(data) >= offset + 10:
        size_bytes = data[offset + 6 : offset + 10]
        size = 0
        for byte in size_bytes:
            size = (size << 7) | (byte & 0x7F)
        footer = 10 if data[offset + 5] & 0x10 else 0
        offset += 10 + size + footer
    return offset


def sniff(data: bytes) -> str:
    """The audio format of `data` from its magic bytes (see SNDFILE_FORMATS and FFMPEG_FORMATS).

    Raises UnsupportedFormat for anything else, CorruptAudio for an ID3 tag followed by no audio.
    """
    head = data[:16]
    riff = {b"RIFF": "wav", b"RIFX": "wav", b"RF64": "rf64"}
    if head[:4] in riff and head[8:12] == b"WAVE":
        return riff[head[:4]]
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    simple = {b"fLaC": "flac", b"OggS": "ogg", b"caff": "caf", b".snd": "au", b"riff": "w64"}
    if head[:4] in simple:
        return simple[head[:4]]
    if head[4:8] == b"ftyp":
        return "m4a"
    if head.startswith((b"#!AMR", b"ADIF")):
        return "amr" if head.startswith(b"#!AMR") else "aac"
    if head == _ASF_GUID:
        return "wma"
    if head[:4] == _EBML_MAGIC:
        return "webm"
    if head[:3] == b"ID3":
        found = _mpeg_audio_sync(data[_skip_id3(data) :][:4])
        if found is None:
            raise CorruptAudio("ID3 tag not followed by MPEG audio")
        return found
    found = _mpeg_audio_sync(head)
    if found is None:
        raise UnsupportedFormat()
    return found


def _check_wav_header(data: bytes) -> None:
    """Refuse a RIFF/WAVE header whose fmt fields contradict each other, or whose data chunk announces
    more than the file holds (CorruptAudio).

    libsndfile trusts the fmt fields, and clamps a data chunk that claims more than the file holds, so a
    WAV cut short (or one claiming hours over a second of samples) would otherwise play what is left.
    A data size of 0 or 0xFFFFFFFF is what streaming writers put when the length is not known yet.
    """
    offset, block_align = 12, 0
    while offset + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        if chunk_id == b"fmt ":
            block_align = _check_wav_fmt(data[offset + 8 : offset + 8 + size])
        elif chunk_id == b"data":
            break
        offset += 8 + size + (size & 1)
    if not block_align:
        raise CorruptAudio("WAV file without a fmt chunk before its data")
    if offset + 8 > len(data) or size in _WAV_UNKNOWN_SIZES:
        return
    held = len(data) - offset - 8
    if truncated(held // block_align, size // block_align):
        raise CorruptAudio(f"WAV data chunk announces {size} bytes, the file holds {held}: it is truncated")


def _check_wav_fmt(fmt: bytes) -> int:
    """The block size of a consistent fmt chunk (CorruptAudio for any other)."""
    if len(fmt) < 16:
        raise CorruptAudio("WAV fmt chunk is too short")
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _WAV_EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]
    if channels == 0 or rate == 0:
        raise CorruptAudio("WAV header with no channels or a zero sample rate")
    if tag not in (_WAV_PCM, _WAV_FLOAT):
        return max(1, int(block_align))
    widths = (8, 16, 24, 32) if tag == _WAV_PCM else (32, 64)
    consistent = (
        bits in widths and block_align == channels * bits // 8 and byte_rate == rate * block_align
    )
    if not consistent:
        raise CorruptAudio(
            f"inconsistent WAV header: {bits} bit, {channels} ch, block {block_align}, {byte_rate} B/s"
        )
    return int(block_align)


def truncated(held: int, announced: int) -> bool:
    """Whether `held` frames fall short of `announced` by more than encoders' slack (TRUNCATION_*)."""
    return announced - held > max(TRUNCATION_MIN_FRAMES, announced * TRUNCATION_TOLERANCE)


class _Sink(Protocol):
    """Where decoded blocks go: kept as they are (decode) or mixed and resampled on the fly (decode_mono)."""

    rate: int

    def add(self, block: npt.NDArray[np.float32]) -> None: ...

    def finish(self, channels: int) -> npt.NDArray[np.float32]: ...


SinkFactory = Callable[[int], _Sink]
"""Makes the sink for audio at the given input rate."""


class _KeepAll:
    """Every block, as decoded: (frames, channels) at the input rate."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._blocks: list[npt.NDArray[np.float32]] = []

    def add(self, block: npt.NDArray[np.float32]) -> None:
        self._blocks.append(block)

    def finish(self, channels: int) -> npt.NDArray[np.float32]:
        if not self._blocks:
            return np.zeros((0, channels), dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(self._blocks), dtype=np.float32)


class _MonoAt:
    """Each block mixed to mono and resampled to `rate` as it arrives: memory follows the output."""

    def __init__(self, in_rate: int, rate: int) -> None:
        self.rate = rate
        self._stream = (
            soxr.ResampleStream(in_rate, rate, 1, dtype="float32", quality="VHQ") if in_rate != rate else None
        )
        self._parts: list[npt.NDArray[np.float32]] = []

    def add(self, block: npt.NDArray[np.float32]) -> None:
        mono = downmix(block)
        self._parts.append(mono if self._stream is None else self._stream.resample_chunk(mono))

    def finish(self, channels: int) -> npt.NDArray[np.float32]:
        if self._stream is not None:
            self._parts.append(self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        mono = np.concatenate(self._parts) if self._parts else np.zeros(0, dtype=np.float32)
        return np.asarray(mono, dtype=np.float32)[:, None]


def _check_block(block: npt.NDArray[np.float32]) -> None:
    if not np.isfinite(block).all():
        raise CorruptAudio("audio contains NaN or infinite samples")
    if block.size and float(np.max(np.abs(block))) > MAX_FLOAT_MAGNITUDE:
        raise CorruptAudio("sample values far outside full scale: the data does not match its header")


def check_budget(frames: int, channels: int, rate: int, limits: DecodeLimits) -> None:
    """Refuse `frames` of `channels` at `rate` when over limits.max_seconds (AudioTooLong) or when they
    decode to more than limits.max_samples samples, frames x channels (AudioTooLarge)."""
    if frames > _max_frames(rate, limits):
        raise _too_long(frames, rate, limits)
    if frames * channels > limits.max_samples:
        raise AudioTooLarge(
            f"{frames / rate:.1f} s of {channels} channels at {rate} Hz decode to {frames * channels} "
            f"samples, more than the {limits.max_samples} allowed"
        )


def _max_frames(rate: int, limits: DecodeLimits) -> int:
    return int(limits.max_seconds * rate) + _ROUNDING_MARGIN_FRAMES


def _too_long(frames: int, rate: int, limits: DecodeLimits) -> AudioTooLong:
    return AudioTooLong(f"audio lasts {frames / rate:.1f} s, more than the {limits.max_seconds:g} s allowed")


def _decode_sndfile(data: bytes, fmt: str, limits: DecodeLimits, make_sink: SinkFactory) -> Decoded:
    if fmt == "wav" and data[:4] == b"RIFF":
        _check_wav_header(data)
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as handle:
            rate, channels, frames = int(handle.samplerate), int(handle.channels), int(handle.frames)
            if rate <= 0 or channels <= 0:
                raise CorruptAudio("header with no channels or a zero sample rate")
            announced = _announced_frames(data, fmt, frames)
            if announced is not None:
                check_budget(announced, channels, rate, limits)
            sink = make_sink(rate)
            decoded = _pump(handle, channels, rate, limits, sink)
    except soundfile.LibsndfileError as exc:
        raise CorruptAudio(f"cannot decode {fmt}: {exc.error_string}") from exc
    if decoded == 0:
        raise EmptyAudio("the audio holds no samples")
    if announced is not None and truncated(decoded, announced):
        if fmt == "mp3" and not _mp3_length_tagged(data):
            # libsndfile decodes an MP3 without a length tag no further than its estimate (wrong for VBR).
            if not ffmpeg_available():
                raise CorruptAudio(f"MP3 without a length tag: libsndfile decodes {decoded} of its "
                                   f"{announced} frames (install ffmpeg, or re-encode it with a Xing tag)")
            log.info("MP3 without a length tag: %d of %d frames from libsndfile, decoding with ffmpeg",
                     decoded, announced)
            return _decode_ffmpeg(data, fmt, limits, make_sink)
        raise CorruptAudio(f"{fmt} is truncated: {decoded} of the {announced} frames its header announces")
    return Decoded(sink.finish(channels), sink.rate, fmt)


def _mp3_length_tagged(data: bytes) -> bool:
    return mpeg.has_length_tag(data, _skip_id3(data))


def _announced_frames(data: bytes, fmt: str, frames: int) -> int | None:
    """How many frames the file says it holds; None when it does not say. An MP3 is its length tag's
    count, or else the count its frame headers add up to (CorruptAudio when its last frame is cut)."""
    if fmt != "mp3":
        return frames if frames < UNKNOWN_FRAMES else None
    start = _skip_id3(data)
    walk = mpeg.walk_frames(data, start)
    if walk.cut_short:
        raise CorruptAudio(f"MP3 truncated inside frame {walk.frames + 1}")
    return frames if mpeg.has_length_tag(data, start) else walk.samples


def _pump(handle: soundfile.SoundFile, channels: int, rate: int, limits: DecodeLimits, sink: _Sink) -> int:
    """Read `handle` block by block into `sink`, holding every block to the limits; the frames read."""
    decoded = 0
    while True:
        block = handle.read(frames=BLOCK_FRAMES, dtype="float32", always_2d=True)
        if block.shape[0] == 0:
            return decoded
        decoded += block.shape[0]
        check_budget(decoded, channels, rate, limits)
        _check_block(block)
        sink.add(block)


def ffmpeg_available() -> bool:
    """Whether ffmpeg and ffprobe (which pydub runs) are on PATH."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def _decode_ffmpeg(data: bytes, fmt: str, limits: DecodeLimits, make_sink: SinkFactory) -> Decoded:
    if not ffmpeg_available():
        raise UnsupportedFormat(f"unsupported audio format ({fmt} needs ffmpeg, which is not installed)")
    try:
        with warnings.catch_warnings():  # pydub imports the deprecated audioop
            warnings.simplefilter("ignore", DeprecationWarning)
            from pydub import AudioSegment
            from pydub.exceptions import CouldntDecodeError
            from pydub.utils import mediainfo_json
    except ImportError as exc:
        detail = f"unsupported audio format ({fmt} needs pydub, which is not installed)"
        raise UnsupportedFormat(detail) from exc
    channels, rate, seconds = _probe(mediainfo_json, data, fmt)
    if seconds is not None:
        check_budget(int(seconds * rate), channels, rate, limits)
    # Decode at most a little past both limits, so a long or wide file costs no more than an acceptable one.
    cap_s = min(limits.max_seconds, limits.max_samples / (channels * rate)) + 1.0
    try:
        segment: Any = AudioSegment.from_file(io.BytesIO(data), format=FFMPEG_FORMATS[fmt], duration=cap_s)
    except (CouldntDecodeError, KeyError, IndexError, ValueError) as exc:
        raise CorruptAudio(f"cannot decode {fmt}") from exc
    width, channels, rate = int(segment.sample_width), int(segment.channels), int(segment.frame_rate)
    raw = np.array(segment.get_array_of_samples()).reshape(-1, channels)
    del segment
    check_budget(raw.shape[0], channels, rate, limits)
    if raw.shape[0] == 0:
        raise EmptyAudio("the audio holds no samples")
    sink = make_sink(rate)
    scale = float(1 << (8 * width - 1))
    for start in range(0, raw.shape[0], BLOCK_FRAMES):
        block = (raw[start : start + BLOCK_FRAMES] / scale).astype(np.float32)
        _check_block(block)
        sink.add(block)
    return Decoded(sink.finish(channels), sink.rate, fmt)


def _probe(mediainfo_json: Callable[..., Any], data: bytes, fmt: str) -> tuple[int, int, float | None]:
    """(channels, rate, seconds or None) of the first audio stream, as ffprobe reads them."""
    try:
        info = mediainfo_json(io.BytesIO(data))
        stream = next(s for s in info.get("streams", []) if s.get("codec_type") == "audio")
        channels, rate = int(stream["channels"]), int(stream["sample_rate"])
    except (StopIteration, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptAudio(f"cannot decode {fmt}: no audio stream") from exc
    if channels <= 0 or rate <= 0:
        raise CorruptAudio(f"cannot decode {fmt}: no channels or a zero sample rate")
    duration = stream.get("duration") or info.get("format", {}).get("duration")
    try:
        seconds = float(duration) if duration not in (None, "N/A") else None
    except ValueError:
        seconds = None
    return channels, rate, seconds


def _read_source(source: str | os.PathLike[str] | bytes, limits: DecodeLimits) -> bytes:
    """The bytes of `source`, refusing empty input and input over limits.max_bytes before reading it."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        size = os.stat(source).st_size
        if size > limits.max_bytes:
            raise AudioTooLarge(f"{size} bytes, more than the {limits.max_bytes} allowed")
        with open(source, "rb") as handle:
            data = handle.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise AudioTooLarge(f"{len(data)} bytes, more than the {limits.max_bytes} allowed")
    if not data:
        raise EmptyAudio("the audio file is empty")
    return data


def _decode(source: str | os.PathLike[str] | bytes, limits: DecodeLimits, make_sink: SinkFactory) -> Decoded:
    data = _read_source(source, limits)
    fmt = sniff(data)
    decoder = _decode_sndfile if fmt in SNDFILE_FORMATS else _decode_ffmpeg
    decoded = decoder(data, fmt, limits, make_sink)
    log.debug("decoded %s: %d frames, %d ch, %d Hz", fmt, *decoded.samples.shape, decoded.rate)
    return decoded


def decode(source: str | os.PathLike[str] | bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> Decoded:
    """Decode a file path or in-memory bytes to float samples at their own rate and channel count.

    Its memory is the decoded audio, at most limits.max_samples float32 values; use decode_mono() for audio
    that is mixed down and resampled anyway. Raises EmptyAudio, AudioTooLarge, AudioTooLong,
    UnsupportedFormat or CorruptAudio (all AudioError).
    """
    return _decode(source, limits, _KeepAll)


def decode_mono(
    source: str | os.PathLike[str] | bytes, limits: DecodeLimits = DEFAULT_LIMITS, rate: int = TELEPHONY_RATE
) -> Decoded:
    """Decode to mono at `rate` (samples of shape (frames, 1)), mixing and resampling block by block while
    decoding, so memory follows the output whatever the input's rate and channels. Errors as decode()."""
    return _decode(source, limits, lambda in_rate: _MonoAt(in_rate, rate))


def decode_to_telephony(
    source: str | os.PathLike[str] | bytes,
    limits: DecodeLimits = DEFAULT_LIMITS,
    settings: TelephonySettings = DEFAULT_TELEPHONY,
) -> npt.NDArray[np.int16]:
    """Decode `source` to telephony audio (8 kHz mono int16): decode_mono() then to_telephony()."""
    decoded = decode_mono(source, limits)
    return to_telephony(decoded.samples, decoded.rate, settings)
