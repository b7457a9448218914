"""G.711 mu-law and A-law companding by numpy lookup tables.

The tables are computed once at import from the ITU-T G.711 segment definitions. Encoding
follows the convention of the classic Sun reference coder (and of Python's `audioop`) for 16-bit
input: mu-law sees the top 14 bits of the sample and A-law the top 13 (arithmetic shift, i.e. floor),
so results are bit-exact with `audioop.lin2ulaw` / `audioop.lin2alaw`. Decoding gives the
16-bit value of each code's reconstruction level, bit-exact with `audioop.ulaw2lin` / `alaw2lin`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_ULAW_BIAS = 0x84
"""Bias added to the 16-bit magnitude before finding the mu-law segment (33 on the 14-bit scale)."""
_ULAW_CLIP_14 = 8159
"""Largest encodable 14-bit mu-law magnitude."""
_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
_ALAW_EVEN_BITS = 0x55
"""A-law inverts the even bits of every code on the wire."""


def _all_int16() -> npt.NDArray[np.int32]:
    """Every int16 value, ordered by its bit pattern read as uint16 (the encode tables' index)."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    v14 = _all_int16() >> 2
    negative = v14 < 0
    magnitude = np.minimum(np.where(negative, -v14, v14), _ULAW_CLIP_14) + (_ULAW_BIAS >> 2)
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, magnitude, side="left")
    # A biased magnitude past the last segment encodes as the largest code of segment 7.
    overflow = segment >= 8
    segment = np.minimum(segment, 7)
    quant = np.where(overflow, 0xF, (magnitude >> (segment + 1)) & 0xF)
    mask = np.where(negative, 0x7F, 0xFF)
    return (((segment << 4) | quant) ^ mask).astype(np.uint8)


def _build_ulaw_decode() -> npt.NDArray[np.int16]:
    inverted = ~np.arange(256, dtype=np.int32) & 0xFF
    level = (((inverted & 0x0F) << 3) + _ULAW_BIAS) << ((inverted & 0x70) >> 4)
    return np.where(inverted & 0x80, _ULAW_BIAS - level, level - _ULAW_BIAS).astype(np.int16)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    v13 = _all_int16() >> 3
    negative = v13 < 0
    magnitude = np.where(negative, -v13 - 1, v13)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, magnitude, side="left")
    overflow = segment >= 8
    segment = np.minimum(segment, 7)
    quant = np.where(segment < 2, magnitude >> 1, magnitude >> np.maximum(segment, 1)) & 0xF
    quant = np.where(overflow, 0xF, quant)
    mask = np.where(negative, _ALAW_EVEN_BITS, _ALAW_EVEN_BITS | 0x80)
    return (((segment << 4) | quant) ^ mask).astype(np.uint8)


def _build_alaw_decode() -> npt.NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32) ^ _ALAW_EVEN_BITS
    quant = code & 0x0F
    segment = (code & 0x70) >> 4
    level = np.where(
        segment == 0,
        (2 * quant + 1) << 3,
        (2 * quant + 1 + 32) << (segment + 2),
    )
    return np.where(code & 0x80, level, -level).astype(np.int16)


_ULAW_ENCODE = _build_ulaw_encode()
_ULAW_DECODE = _build_ulaw_decode()
_ALAW_ENCODE = _build_alaw_encode()
_ALAW_DECODE = _build_alaw_decode()
for _table in (_ULAW_ENCODE, _ULAW_DECODE, _ALAW_ENCODE, _ALAW_DECODE):
    _table.setflags(write=False)


def _as_int16(pcm: npt.ArrayLike) -> npt.NDArray[np.int16]:
    array = np.asarray(pcm)
    if array.dtype != np.int16:
        raise TypeError(f"G.711 encoding needs int16 samples, got {array.dtype}")
    return array


def _as_codes(codes: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    array = np.asarray(codes)
    if array.dtype != np.uint8:
        raise TypeError(f"G.711 decoding needs uint8 codes, got {array.dtype}")
    return array


def ulaw_encode(pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """Encode 16-bit linear samples to G.711 mu-law codes (PCMU), same shape."""
    return _ULAW_ENCODE[_as_int16(pcm).view(np.uint16)]


def ulaw_decode(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """Decode G.711 mu-law codes (PCMU) to 16-bit linear samples, same shape."""
    return _ULAW_DECODE[_as_codes(codes)]


def alaw_encode(pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """Encode 16-bit linear samples to G.711 A-law codes (PCMA), same shape."""
    return _ALAW_ENCODE[_as_int16(pcm).view(np.uint16)]


def alaw_decode(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """Decode G.711 A-law codes (PCMA) to 16-bit linear samples, same shape."""
    return _ALAW_DECODE[_as_codes(codes)]
