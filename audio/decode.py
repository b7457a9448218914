"""Any uploaded or fetched audio -> float samples, refusing what is empty, broken, too big or too long.

The format is sniffed from the content, never from a file name. libsndfile (the soundfile wheel)
reads WAV (any PCM width, float, A-law/mu-law), RF64, W64, AIFF, CAF, AU, FLAC, Ogg (Vorbis, Opus) and
MPEG audio (MP3) without any external program. Containers libsndfile cannot read (MP4/M4A, raw AAC,
AMR, WMA, Matroska/WebM) go through pydub and ffmpeg, only when ffmpeg and ffprobe are on PATH.

Limits are enforced before work is done: the byte size before reading or decoding, the duration from
the header's frame count before decoding, and the decoded length again while decoding (headers lie).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import struct
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile

from audio.errors import AudioTooLarge, AudioTooLong, CorruptAudio, EmptyAudio, UnsupportedFormat
from audio.settings import DecodeLimits, TelephonySettings
from audio.telephony import DEFAULT_TELEPHONY, to_telephony

log = logging.getLogger(__name__)

DEFAULT_LIMITS = DecodeLimits()

SNDFILE_FORMATS = frozenset({"wav", "rf64", "w64", "aiff", "caf", "au", "flac", "ogg", "mp3"})
"""Formats decoded by libsndfile, in-process."""
FFMPEG_FORMATS = {"m4a": "mp4", "aac": "aac", "amr": "amr", "wma": "asf", "webm": "matroska"}
"""Formats decoded by pydub + ffmpeg, with the ffmpeg demuxer each one needs."""
MAX_FLOAT_MAGNITUDE = 16.0
"""Float samples beyond +-16 (24 dB over full scale) are not audio: the data does not match the header."""
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_WAV_PCM, _WAV_FLOAT, _WAV_EXTENSIBLE = 1, 3, 0xFFFE
_ROUNDING_MARGIN_FRAMES = 1


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
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    if head[1] & 0xF6 == 0xF0:
        return "aac"
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    if version == 1 or layer == 0 or bitrate == 15 or rate == 3:
        return None
    return "mp3"


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
    """Refuse a RIFF/WAVE fmt chunk whose fields contradict each other (CorruptAudio).

    libsndfile clamps a data chunk that claims more than the file holds, but it trusts the fmt fields;
    a width, block size or byte rate that disagree mean the samples cannot be read as the header says.
    """
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        if chunk_id == b"fmt ":
            _check_wav_fmt(data[offset + 8 : offset + 8 + size])
            return
        if chunk_id == b"data":
            break
        offset += 8 + size + (size & 1)
    raise CorruptAudio("WAV file without a fmt chunk before its data")


def _check_wav_fmt(fmt: bytes) -> None:
    if len(fmt) < 16:
        raise CorruptAudio("WAV fmt chunk is too short")
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _WAV_EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]
    if channels == 0 or rate == 0:
        raise CorruptAudio("WAV header with no channels or a zero sample rate")
    if tag not in (_WAV_PCM, _WAV_FLOAT):
        return
    widths = (8, 16, 24, 32) if tag == _WAV_PCM else (32, 64)
    consistent = (
        bits in widths and block_align == channels * bits // 8 and byte_rate == rate * block_align
    )
    if not consistent:
        raise CorruptAudio(
            f"inconsistent WAV header: {bits} bit, {channels} ch, block {block_align}, {byte_rate} B/s"
        )


def _check_samples(samples: npt.NDArray[np.float32]) -> None:
    if samples.shape[0] == 0:
        raise EmptyAudio("the audio holds no samples")
    if not np.isfinite(samples).all():
        raise CorruptAudio("audio contains NaN or infinite samples")
    if float(np.max(np.abs(samples))) > MAX_FLOAT_MAGNITUDE:
        raise CorruptAudio("sample values far outside full scale: the data does not match its header")


def _max_frames(rate: int, limits: DecodeLimits) -> int:
    return int(limits.max_seconds * rate) + _ROUNDING_MARGIN_FRAMES


def _too_long(frames: int, rate: int, limits: DecodeLimits) -> AudioTooLong:
    return AudioTooLong(f"audio lasts {frames / rate:.1f} s, more than the {limits.max_seconds:g} s allowed")


def _decode_sndfile(data: bytes, fmt: str, limits: DecodeLimits) -> Decoded:
    if fmt == "wav" and data[:4] == b"RIFF":
        _check_wav_header(data)
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as handle:
            rate, frames = int(handle.samplerate), int(handle.frames)
            if rate <= 0 or handle.channels <= 0:
                raise CorruptAudio("header with no channels or a zero sample rate")
            limit = _max_frames(rate, limits)
            if frames > limit:
                raise _too_long(frames, rate, limits)
            samples = handle.read(frames=limit + 1, dtype="float32", always_2d=True)
    except soundfile.LibsndfileError as exc:
        raise CorruptAudio(f"cannot decode {fmt}: {exc.error_string}") from exc
    if samples.shape[0] > limit:
        raise _too_long(samples.shape[0], rate, limits)
    if samples.shape[0] < frames * 0.9:
        log.warning("%s decoded to %d of the %d frames its header announces (truncated?)",
                    fmt, samples.shape[0], frames)
    return Decoded(np.ascontiguousarray(samples), rate, fmt)


def ffmpeg_available() -> bool:
    """Whether ffmpeg and ffprobe (which pydub runs) are on PATH."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def _decode_ffmpeg(data: bytes, fmt: str, limits: DecodeLimits) -> Decoded:
    if not ffmpeg_available():
        raise UnsupportedFormat(f"unsupported audio format ({fmt} needs ffmpeg, which is not installed)")
    try:
        with warnings.catch_warnings():  # pydub imports the deprecated audioop
            warnings.simplefilter("ignore", DeprecationWarning)
            from pydub import AudioSegment
            from pydub.exceptions import CouldntDecodeError
    except ImportError as exc:
        detail = f"unsupported audio format ({fmt} needs pydub, which is not installed)"
        raise UnsupportedFormat(detail) from exc
    # Decode at most a little past the limit, so a long file costs no more than an acceptable one.
    try:
        segment: Any = AudioSegment.from_file(
            io.BytesIO(data), format=FFMPEG_FORMATS[fmt], duration=limits.max_seconds + 1.0
        )
    except (CouldntDecodeError, KeyError, IndexError, ValueError) as exc:
        raise CorruptAudio(f"cannot decode {fmt}") from exc
    width, channels, rate = int(segment.sample_width), int(segment.channels), int(segment.frame_rate)
    raw = np.array(segment.get_array_of_samples())
    samples = (raw.reshape(-1, channels) / float(1 << (8 * width - 1))).astype(np.float32)
    if samples.shape[0] > _max_frames(rate, limits):
        raise _too_long(samples.shape[0], rate, limits)
    return Decoded(samples, rate, fmt)


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


def decode(source: str | os.PathLike[str] | bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> Decoded:
    """Decode a file path or in-memory bytes to float samples.

    Raises EmptyAudio, AudioTooLarge, AudioTooLong, UnsupportedFormat or CorruptAudio (all AudioError).
    """
    data = _read_source(source, limits)
    fmt = sniff(data)
    decoder = _decode_sndfile if fmt in SNDFILE_FORMATS else _decode_ffmpeg
    decoded = decoder(data, fmt, limits)
    _check_samples(decoded.samples)
    log.debug("decoded %s: %d frames, %d ch, %d Hz", fmt, *decoded.samples.shape, decoded.rate)
    return decoded


def decode_to_telephony(
    source: str | os.PathLike[str] | bytes,
    limits: DecodeLimits = DEFAULT_LIMITS,
    settings: TelephonySettings = DEFAULT_TELEPHONY,
) -> npt.NDArray[np.int16]:
    """Decode `source` and convert it to telephony audio (8 kHz mono int16): decode() then to_telephony()."""
    decoded = decode(source, limits)
    return to_telephony(decoded.samples, decoded.rate, settings)
