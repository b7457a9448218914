"""audio.mpeg: frame headers and walks over MP3s libsndfile wrote, cut anywhere, and over any bytes."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audio.mpeg import has_length_tag, parse_header, walk_frames

SAMPLES_PER_FRAME = {44100: 1152, 22050: 576, 8000: 576}
"""MPEG-1, MPEG-2 and MPEG-2.5 layer III."""


def mp3(rate: int, seconds: float = 2.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    buffer = io.BytesIO()
    soundfile.write(buffer, 0.5 * np.sin(2 * np.pi * 440 * t), rate, format="MP3", subtype="MPEG_LAYER_III")
    return buffer.getvalue()


@pytest.mark.parametrize("rate", sorted(SAMPLES_PER_FRAME))
def test_a_whole_file_walks_to_its_end(rate: int) -> None:
    data = mp3(rate)
    header = parse_header(data)
    assert header is not None and (header.rate, header.samples) == (rate, SAMPLES_PER_FRAME[rate])
    walk = walk_frames(data, 0)
    assert not walk.cut_short and has_length_tag(data, 0)
    decoded = soundfile.info(io.BytesIO(data)).frames
    # The walk counts the tag's frame and the encoder's delay (1105) and padding (under one frame) as well.
    assert decoded <= walk.samples <= decoded + SAMPLES_PER_FRAME[rate] * 2 + 1105
    assert walk.samples == walk.frames * SAMPLES_PER_FRAME[rate]


@pytest.mark.parametrize("rate", sorted(SAMPLES_PER_FRAME))
def test_a_cut_inside_a_frame_is_found_and_a_cut_between_frames_is_not(rate: int) -> None:
    data = mp3(rate)
    offset, boundaries = 0, []
    while (header := parse_header(data[offset : offset + 4])) is not None:
        offset += header.length
        boundaries.append(offset)
    assert offset == len(data)
    for end in boundaries[:-1]:
        assert not walk_frames(data[:end], 0).cut_short
        assert walk_frames(data[: end + 5], 0).cut_short


def test_trailing_tags_end_the_walk_cleanly() -> None:
    data = mp3(44100)
    assert walk_frames(data + b"TAG" + bytes(125), 0) == walk_frames(data, 0)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # a busy CI machine
@given(st.binary(max_size=600))
def test_any_bytes_walk_without_error(data: bytes) -> None:
    walk = walk_frames(data, 0)
    assert walk.samples >= 0 and walk.frames >= 0
