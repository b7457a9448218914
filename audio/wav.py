"""The WAV files ivrgate writes: canonical 44-byte header, PCM, 16-bit, mono.

That is the one layout every SIP media player accepts (pjsua2's AudioMediaPlayer among them), so
prompts are always written this way. `read_wav` reads such files back; anything else goes through
`audio.decode`.
"""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

from audio import TELEPHONY_RATE
from audio.errors import CorruptAudio, UnsupportedFormat

_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")
"""RIFF header, 16-byte fmt chunk and data chunk header: 44 bytes."""
_FORMAT_PCM = 1
_BITS = 16
_CHANNELS = 1
_FMT_PCM_SIZE = 16


def wav_bytes(pcm: npt.NDArray[np.int16], rate: int = TELEPHONY_RATE) -> bytes:
    """The complete WAV file (44-byte header + little-endian samples) of mono int16 samples."""
    samples = np.asarray(pcm)
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise TypeError(f"wav_bytes needs a 1-D int16 array, got {samples.dtype} with shape {samples.shape}")
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")
    data = samples.astype("<i2", copy=False).tobytes()
    block_align = _CHANNELS * _BITS // 8
    header = _HEADER.pack(
        b"RIFF", 36 + len(data), b"WAVE",
        b"fmt ", _FMT_PCM_SIZE, _FORMAT_PCM, _CHANNELS, rate, rate * block_align, block_align, _BITS,
        b"data", len(data),
    )
    return header + data


def write_wav(path: str | os.PathLike[str], pcm: npt.NDArray[np.int16], rate: int = TELEPHONY_RATE) -> None:
    """Write `wav_bytes(pcm, rate)` to `path` atomically: readers see the old file or the whole new one."""
    target = Path(path)
    payload = wav_bytes(pcm, rate)
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _chunks(data: bytes) -> dict[bytes, bytes]:
    """The top-level chunks of a RIFF/WAVE file by id (first occurrence); the data chunk may be cut short."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise UnsupportedFormat("not a RIFF/WAVE file")
    chunks: dict[bytes, bytes] = {}
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        body = data[offset + 8 : offset + 8 + size]
        chunks.setdefault(chunk_id, body)
        offset += 8 + size + (size & 1)
    return chunks


def read_wav(source: str | os.PathLike[str] | bytes) -> tuple[npt.NDArray[np.int16], int]:
    """Samples and rate of a 16-bit mono PCM WAV (the kind `write_wav` produces).

    Raises UnsupportedFormat for any other WAV layout and CorruptAudio for a broken file.
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    chunks = _chunks(data)
    fmt = chunks.get(b"fmt ")
    if fmt is None or len(fmt) < _FMT_PCM_SIZE or b"data" not in chunks:
        raise CorruptAudio("WAV file without a complete fmt or data chunk")
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if (tag, channels, bits) != (_FORMAT_PCM, _CHANNELS, _BITS):
        layout = f"format {tag}, {channels} ch, {bits} bit"
        raise UnsupportedFormat(f"read_wav reads 16-bit mono PCM only, not {layout}")
    if rate == 0 or block_align != 2 or byte_rate != rate * 2:
        raise CorruptAudio("inconsistent WAV fmt chunk")
    body = chunks[b"data"]
    usable = len(body) - len(body) % 2
    return np.frombuffer(body[:usable], dtype="<i2").astype(np.int16), int(rate)
