"""G.711 tables: bit-exact against the standard library's audioop, both laws, every input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError:  # Python 3.13 and later
        audioop = None  # type: ignore[assignment]

needs_audioop = pytest.mark.skipif(audioop is None, reason="audioop is not available")
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)


@needs_audioop
def test_ulaw_encode_matches_audioop_for_every_int16() -> None:
    expected = np.frombuffer(audioop.lin2ulaw(ALL_INT16.astype("<i2").tobytes(), 2), dtype=np.uint8)
    np.testing.assert_array_equal(ulaw_encode(ALL_INT16), expected)


@needs_audioop
def test_alaw_encode_matches_audioop_for_every_int16() -> None:
    expected = np.frombuffer(audioop.lin2alaw(ALL_INT16.astype("<i2").tobytes(), 2), dtype=np.uint8)
    np.testing.assert_array_equal(alaw_encode(ALL_INT16), expected)


@needs_audioop
def test_ulaw_decode_matches_audioop_for_every_code() -> None:
    expected = np.frombuffer(audioop.ulaw2lin(ALL_CODES.tobytes(), 2), dtype="<i2")
    np.testing.assert_array_equal(ulaw_decode(ALL_CODES), expected)


@needs_audioop
def test_alaw_decode_matches_audioop_for_every_code() -> None:
    expected = np.frombuffer(audioop.alaw2lin(ALL_CODES.tobytes(), 2), dtype="<i2")
    np.testing.assert_array_equal(alaw_decode(ALL_CODES), expected)


def test_known_codes() -> None:
    # Silence is 0xFF in mu-law and 0xD5 in A-law; full scale is 0x80 / 0xAA (positive).
    assert ulaw_encode(np.array([0, 32767, -32768], dtype=np.int16)).tolist() == [0xFF, 0x80, 0x00]
    assert alaw_encode(np.array([0, 32767, -32768], dtype=np.int16)).tolist() == [0xD5, 0xAA, 0x2A]
    assert ulaw_decode(np.array([0xFF, 0x80], dtype=np.uint8)).tolist() == [0, 32124]
    assert alaw_decode(np.array([0xD5, 0xAA], dtype=np.uint8)).tolist() == [8, 32256]


@pytest.mark.parametrize(("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)])
def test_decoded_levels_reencode_to_the_same_level(encode, decode) -> None:  # type: ignore[no-untyped-def]
    levels = decode(ALL_CODES)
    np.testing.assert_array_equal(decode(encode(levels)), levels)


@pytest.mark.parametrize(("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)])
def test_quantisation_error_is_bounded(encode, decode) -> None:  # type: ignore[no-untyped-def]
    roundtrip = decode(encode(ALL_INT16)).astype(np.int32)
    error = np.abs(roundtrip - ALL_INT16.astype(np.int32))
    # G.711's largest step is 1024 (mu-law) / 1024 (A-law) units in the top segment.
    assert error.max() <= 1024 + 8
    small = np.abs(ALL_INT16.astype(np.int32)) < 64
    assert error[small].max() <= 8


def test_shape_is_kept_and_dtypes_are_checked() -> None:
    block = np.zeros((2, 160), dtype=np.int16)
    assert ulaw_encode(block).shape == (2, 160)
    assert alaw_decode(alaw_encode(block)).dtype == np.int16
    with pytest.raises(TypeError):
        ulaw_encode(np.zeros(4, dtype=np.float32))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        alaw_decode(np.zeros(4, dtype=np.int16))  # type: ignore[arg-type]
