"""MPEG audio (MP3) framing, read without decoding: where the frames are, how long they say the audio is,
and whether the file stops inside a frame.

libsndfile (through mpg123) takes an MP3's length from its Xing/Info/VBRI tag when there is one, and
otherwise estimates it from the file size and the first frames; it then decodes no further than that.
A file cut in half keeps its tag (so decoding ends early and the shortfall shows), while a file without a
tag is only recognisably truncated when its last frame is incomplete: walk_frames() finds that.
"""

from __future__ import annotations

from dataclasses import dataclass

_BITRATES_KBPS = {
    (1, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (1, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
"""kbit/s by (MPEG-1 or 2/2.5, layer) and the header's 4-bit index; 0 is "free format"."""
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
"""Sample rates by the header's version bits (3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5)."""
TRAILING_TAGS = (b"TAG", b"APETAGEX", b"LYRICS")
"""What may follow the last frame (ID3v1, APEv2, Lyrics3)."""
LENGTH_TAGS = (b"Xing", b"Info", b"VBRI")
"""Tags in the first frame that state the stream's exact length."""
_FIRST_FRAME_SCAN = 200
"""Bytes of the first frame searched for a length tag (it sits after the side information)."""


@dataclass(frozen=True)
class FrameHeader:
    """One MPEG audio frame header: its length in bytes and the sample frames it holds."""

    length: int
    samples: int
    rate: int


@dataclass(frozen=True)
class Walk:
    """What walking the frames found: sample frames in whole frames, and whether the data stops inside one."""

    samples: int
    frames: int
    cut_short: bool


def header_fields(head: bytes) -> tuple[int, int, int, int, int] | None:
    """(version, layer bits, bitrate index, rate index, padding) when the first 4 bytes of `head` are an
    MPEG audio frame header (layers I-III, free format included), else None."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    version, layer_bits = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate_index, rate_index, padding = head[2] >> 4, (head[2] >> 2) & 3, (head[2] >> 1) & 1
    if version == 1 or layer_bits == 0 or bitrate_index == 15 or rate_index == 3:
        return None
    return version, layer_bits, bitrate_index, rate_index, padding


def parse_header(head: bytes) -> FrameHeader | None:
    """The frame header in the first 4 bytes of `head`; None when they are not one (or free format)."""
    fields = header_fields(head)
    if fields is None or fields[2] == 0:  # free format: the frame length is not in the header
        return None
    version, layer_bits, bitrate_index, rate_index, padding = fields
    layer = 4 - layer_bits
    kbps = _BITRATES_KBPS[(1 if version == 3 else 2, layer)][bitrate_index]
    rate = _RATES[version][rate_index]
    if layer == 1:
        return FrameHeader((12000 * kbps // rate + padding) * 4, 384, rate)
    per_frame = 1152 if layer == 2 or version == 3 else 576
    return FrameHeader(per_frame // 8 * 1000 * kbps // rate + padding, per_frame, rate)


def has_length_tag(data: bytes, start: int) -> bool:
    """Whether the frame at `start` carries a Xing, Info or VBRI tag (the exact length of the stream)."""
    first = data[start : start + _FIRST_FRAME_SCAN]
    return any(tag in first for tag in LENGTH_TAGS)


def walk_frames(data: bytes, start: int) -> Walk:
    """Follow frame headers from `start` to the end of `data`. Stops at the first byte that is not a frame
    header (a trailing tag, or junk libsndfile may resync past); `cut_short` when the last header promises
    more bytes than are left."""
    offset, samples, frames = start, 0, 0
    while offset + 4 <= len(data):
        header = parse_header(data[offset : offset + 4])
        if header is None:
            break
        if offset + header.length > len(data):
            return Walk(samples, frames, cut_short=True)
        offset += header.length
        samples += header.samples
        frames += 1
    return Walk(samples, frames, cut_short=False)
