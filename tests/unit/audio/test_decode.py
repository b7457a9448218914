"""decode(): every readable format sniffed from content, every bad input refused with its error."""

from __future__ import annotations

import contextlib
import io
import shutil
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
import soxr

from audio import TELEPHONY_RATE
from audio.decode import Decoded, decode, decode_mono, decode_to_telephony, sniff
from audio.errors import AudioError, AudioTooLarge, AudioTooLong, CorruptAudio, EmptyAudio, UnsupportedFormat
from audio.mpeg import parse_header
from audio.settings import DecodeLimits
from audio.telephony import downmix, loudness_lufs
from audio.wav import wav_bytes
from tests.fixtures.make_fixtures import AMPLITUDE, TONE_HZ, TONE_SECONDS, WAV_SPECS, flac_bomb, tone

from .conftest import dominant_hz


@pytest.mark.parametrize("name", sorted(WAV_SPECS))
def test_wav_of_every_width_rate_and_channel_count(audio_files: dict[str, Path], name: str) -> None:
    spec = WAV_SPECS[name]
    decoded = decode(audio_files[name])
    assert (decoded.format, decoded.rate) == ("wav", spec.rate)
    assert decoded.samples.dtype == np.float32
    assert decoded.samples.shape == (round(spec.rate * TONE_SECONDS), spec.channels)
    tolerance = 1 / 100 if spec.subtype == "PCM_U8" else 1e-4
    np.testing.assert_allclose(decoded.samples, tone(spec.rate, spec.channels), atol=tolerance)
    assert decoded.seconds == pytest.approx(TONE_SECONDS, abs=1e-3)


@pytest.mark.parametrize(("name", "fmt"), [("tone.mp3", "mp3"), ("tone.flac", "flac"), ("tone.ogg", "ogg")])
def test_compressed_formats(audio_files: dict[str, Path], name: str, fmt: str) -> None:
    decoded = decode(audio_files[name].read_bytes())
    assert (decoded.format, decoded.rate, decoded.samples.shape[1]) == (fmt, 44100, 2)
    assert decoded.seconds == pytest.approx(TONE_SECONDS, abs=0.06)
    assert abs(dominant_hz(decoded.samples[:, 0], decoded.rate) - TONE_HZ) < 10
    assert float(np.max(np.abs(decoded.samples))) == pytest.approx(AMPLITUDE, abs=0.05)


def test_the_file_name_is_not_trusted(audio_files: dict[str, Path]) -> None:
    assert decode(audio_files["mp3_named.wav"]).format == "mp3"


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_m4a_through_pydub_and_ffmpeg(audio_files: dict[str, Path]) -> None:
    decoded = decode(audio_files["tone.m4a"])
    assert (decoded.format, decoded.rate, decoded.samples.shape[1]) == ("m4a", 44100, 2)
    assert decoded.seconds == pytest.approx(TONE_SECONDS, abs=0.06)
    assert abs(dominant_hz(decoded.samples[:, 0], decoded.rate) - TONE_HZ) < 10


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_m4a_over_the_duration_limit(audio_files: dict[str, Path]) -> None:
    with pytest.raises(AudioTooLong):
        decode(audio_files["tone.m4a"], DecodeLimits(max_seconds=0.1))


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_broken_m4a_is_corrupt(audio_files: dict[str, Path]) -> None:
    data = audio_files["tone.m4a"].read_bytes()
    with pytest.raises(CorruptAudio):
        decode(data[:40])


def test_without_ffmpeg_other_containers_are_unsupported(
    audio_files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m4a = audio_files.get("tone.m4a")
    data = m4a.read_bytes() if m4a else b"\x00\x00\x00\x20ftypM4A " + bytes(64)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: ffmpeg cannot be found
    with pytest.raises(UnsupportedFormat, match="unsupported audio format"):
        decode(data)
    assert decode(audio_files["tone.mp3"]).format == "mp3"  # libsndfile needs no ffmpeg


@pytest.mark.parametrize("source", [b"", "empty.wav"])
def test_empty_input(audio_files: dict[str, Path], source: bytes | str) -> None:
    with pytest.raises(EmptyAudio) as caught:
        decode(audio_files[source] if isinstance(source, str) else source)
    assert caught.value.code == 514


def test_a_wav_without_samples_is_empty() -> None:
    with pytest.raises(EmptyAudio):
        decode(wav_bytes(np.zeros(0, dtype=np.int16)))


def test_truncated_mp3_is_corrupt_at_any_cut(audio_files: dict[str, Path]) -> None:
    with pytest.raises(CorruptAudio):
        decode(audio_files["truncated.mp3"])
    whole = audio_files["tone.mp3"].read_bytes()
    for cut in range(10, len(whole), max(1, len(whole) // 25)):
        with pytest.raises(CorruptAudio):
            decode_mono(whole[:cut])


def _ten_second_mp3(rate: int = 44100) -> bytes:
    t = np.arange(rate * 10) / rate
    buffer = io.BytesIO()
    soundfile.write(buffer, 0.5 * np.sin(2 * np.pi * 440 * t), rate, format="MP3", subtype="MPEG_LAYER_III")
    return buffer.getvalue()


def test_half_an_mp3_is_corrupt_by_its_length_tag() -> None:
    data = _ten_second_mp3()
    assert decode_mono(data).seconds == pytest.approx(10.0, abs=0.01)
    lengths = mpeg_frame_lengths(data)
    middle = sum(lengths[: len(lengths) // 2])  # a frame boundary: only the length tag shows the cut
    with pytest.raises(CorruptAudio, match="truncated") as caught:
        decode_mono(data[:middle])
    assert caught.value.status_text == "ERROR: CORRUPT AUDIO FILE"


def mpeg_frame_lengths(data: bytes) -> list[int]:
    """The length of every frame of an MP3 without ID3 tags, from its headers."""
    lengths, offset = [], 0
    while (header := parse_header(data[offset : offset + 4])) is not None:
        lengths.append(header.length)
        offset += header.length
    return lengths


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_an_mp3_without_length_tag_is_decoded_whole_and_refused_when_cut_inside_a_frame() -> None:
    tagged = _ten_second_mp3()
    untagged = tagged[mpeg_frame_lengths(tagged)[0] :]  # the first frame holds the Xing tag
    # libsndfile estimates this VBR file at 1.5 s and stops there; ffmpeg decodes all of it.
    assert decode_mono(untagged).seconds == pytest.approx(10.0, abs=0.05)
    with pytest.raises(CorruptAudio, match="inside frame"):
        decode_mono(untagged[: len(untagged) // 2 + 7])


def test_wav_whose_data_size_lies_is_corrupt(audio_files: dict[str, Path]) -> None:
    with pytest.raises(CorruptAudio, match="announces 32000 bytes, the file holds 3200"):
        decode(audio_files["lying_size.wav"])


def test_wav_cut_at_100_bytes_or_claiming_ten_hours_is_corrupt() -> None:
    whole = wav_bytes(np.full(8000, 1000, dtype=np.int16))
    ten_hours = whole[:40] + struct.pack("<I", 10 * 3600 * 8000 * 2) + whole[44:]
    for data in (whole[:100], ten_hours):
        with pytest.raises(CorruptAudio, match="truncated"):
            decode_mono(data)
    assert decode_mono(whole[:-2]).samples.size == 7999  # one frame short is within the slack


def test_truncated_flac_is_corrupt(audio_files: dict[str, Path]) -> None:
    data = audio_files["tone.flac"].read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        with pytest.raises(CorruptAudio):
            decode_mono(data[:cut])


@pytest.mark.parametrize("name", ["lying_format.wav", "inconsistent_fmt.wav"])
def test_wav_whose_format_lies_is_corrupt(audio_files: dict[str, Path], name: str) -> None:
    with pytest.raises(CorruptAudio):
        decode(audio_files[name])


def test_random_bytes_are_unsupported(audio_files: dict[str, Path]) -> None:
    with pytest.raises(UnsupportedFormat):
        decode(audio_files["random.bin"])
    with pytest.raises(UnsupportedFormat):
        decode(b"<html><body>Not found</body></html>")


GARBAGE_AFTER = [b"RIFF\x00\x10\x00\x00WAVE", b"fLaC", b"OggS", b"ID3\x03\x00\x00\x00\x00\x00\x05"]


@pytest.mark.parametrize("magic", GARBAGE_AFTER)
def test_known_magic_followed_by_garbage_is_corrupt(audio_files: dict[str, Path], magic: bytes) -> None:
    with pytest.raises(CorruptAudio):
        decode(magic + audio_files["random.bin"].read_bytes())


def test_non_finite_float_samples_are_corrupt() -> None:
    for bad in (np.nan, np.inf):
        samples = np.full(100, 0.1)
        samples[50] = bad
        buffer = io.BytesIO()
        soundfile.write(buffer, samples, 8000, format="WAV", subtype="FLOAT")
        with pytest.raises(CorruptAudio):
            decode(buffer.getvalue())


def test_bytes_over_the_size_limit(audio_files: dict[str, Path]) -> None:
    data = audio_files["sine_s16_44100_stereo.wav"].read_bytes()
    with pytest.raises(AudioTooLarge) as caught:
        decode(data, DecodeLimits(max_bytes=len(data) - 1))
    assert caught.value.status_text == "ERROR: VOICE FILE TOO LARGE"
    assert decode(data, DecodeLimits(max_bytes=len(data))).rate == 44100


def test_a_huge_file_is_refused_by_its_size_without_reading_it(tmp_path: Path) -> None:
    huge = tmp_path / "huge.wav"
    with huge.open("wb") as handle:
        handle.truncate(64 * 1024**3)  # sparse: reading it would take minutes and 64 GiB
    with pytest.raises(AudioTooLarge):
        decode(huge)


def test_duration_limit_is_a_setting(audio_files: dict[str, Path]) -> None:
    path = audio_files["sine_s16_44100_stereo.wav"]
    with pytest.raises(AudioTooLong):
        decode(path, DecodeLimits(max_seconds=TONE_SECONDS / 2))
    assert decode(path, DecodeLimits(max_seconds=TONE_SECONDS)).seconds == pytest.approx(TONE_SECONDS)


def _one_hour_mp3(audio_files: dict[str, Path]) -> bytes:
    """An hour of low-rate MP3 (3.6 MB): one 72-byte frame of 8 kHz silence, repeated."""
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(16000), 8000, format="MP3", subtype="MPEG_LAYER_III")
    encoded = buffer.getvalue()
    start = encoded.index(b"\xff", 300)
    frame = encoded[start : start + 72]
    assert frame[:2] == b"\xff\xe3"
    return frame * (3600 * 8000 // 576)


def test_an_hour_long_mp3_is_refused_from_its_header(audio_files: dict[str, Path]) -> None:
    data = _one_hour_mp3(audio_files)
    tracemalloc.start()
    try:
        with pytest.raises(AudioTooLong):
            decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Decoding the hour would take 115 MB of float32; the refusal costs about the input's copy.
    assert peak < 3 * len(data)


def test_a_streaming_header_of_unknown_length_still_meets_the_limit() -> None:
    pcm = np.zeros(8000 * 3, dtype=np.int16) + 100
    data = bytearray(wav_bytes(pcm))
    data[40:44] = struct.pack("<I", 0xFFFFFFFF)  # "unknown length", as streaming writers put it
    with pytest.raises(AudioTooLong):
        decode(bytes(data), DecodeLimits(max_seconds=2.0))


def test_decode_to_telephony(audio_files: dict[str, Path]) -> None:
    pcm = decode_to_telephony(audio_files["tone.mp3"])
    assert pcm.dtype == np.int16
    assert pcm.size == pytest.approx(TONE_SECONDS * TELEPHONY_RATE, abs=400)
    assert loudness_lufs(pcm, TELEPHONY_RATE) == pytest.approx(-19.0, abs=0.5)


def test_decoded_is_frozen_and_reports_seconds() -> None:
    decoded = Decoded(np.zeros((800, 1), dtype=np.float32), 8000, "wav")
    assert decoded.seconds == 0.1
    with pytest.raises(AttributeError):
        decoded.rate = 16000  # type: ignore[misc]


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "wav"),
        (b"RF64\xff\xff\xff\xffWAVEds64", "rf64"),
        (b"FORM\x00\x00\x00\x00AIFFCOMM", "aiff"),
        (b"fLaC\x00\x00\x00\x22", "flac"),
        (b"OggS\x00\x02", "ogg"),
        (b"\xff\xfb\x90\x64", "mp3"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x64", "mp3"),
        (b"\xff\xf1\x50\x80", "aac"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00", "m4a"),
        (b"#!AMR\n", "amr"),
        (bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"), "wma"),
        (b"\x1a\x45\xdf\xa3\x01\x00", "webm"),
    ],
)
def test_sniff(head: bytes, fmt: str) -> None:
    assert sniff(head + bytes(16)) == fmt


@pytest.mark.parametrize("head", [b"\xff\xff\xff\xff", b"MThd\x00\x00", b"%PDF-1.4", b"\x00" * 16])
def test_sniff_refuses_non_audio(head: bytes) -> None:
    with pytest.raises(UnsupportedFormat):
        sniff(head)


# --- decompression bombs: the decoded-sample budget and streaming decode ------------------------------


def _peak_bytes(work: Callable[[], object]) -> int:
    """Peak traced allocation (numpy reports its buffers to tracemalloc) while `work` runs or raises."""
    tracemalloc.start()
    try:
        with contextlib.suppress(AudioError):
            work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """7.1 silence at 384 kHz: 10 s with its length in the header, 30 s with an unknown length."""
    directory = tmp_path_factory.mktemp("bombs")
    return {
        "known": flac_bomb(directory / "known.flac", 10).read_bytes(),
        "unknown": flac_bomb(directory / "unknown.flac", 30, known_length=False).read_bytes(),
    }


@pytest.mark.parametrize("decoder", [decode, decode_mono])
def test_a_bomb_is_refused_from_its_header_before_decoding(bombs: dict[str, bytes], decoder: Any) -> None:
    data = bombs["known"]
    with pytest.raises(AudioTooLarge, match="8 channels at 384000 Hz") as caught:
        decoder(data)
    assert (caught.value.code, caught.value.status_text) == (500, "ERROR: VOICE FILE TOO LARGE")
    # 10 s of it would be 123 MB of float32; the refusal costs the input and the reader's buffers.
    assert _peak_bytes(lambda: decoder(data)) < 4 * 1024 * 1024


def test_a_bomb_whose_header_hides_its_length_is_stopped_while_decoding(bombs: dict[str, bytes]) -> None:
    data = bombs["unknown"]
    with pytest.raises(AudioTooLarge, match="decode to") as caught:
        decode_mono(data)
    assert caught.value.status_text == "ERROR: VOICE FILE TOO LARGE"
    # It stops at the 28.8 million sample budget; mono at 8 kHz, what it holds by then is 0.6 MB.
    assert _peak_bytes(lambda: decode_mono(data)) < 8 * 1024 * 1024


def test_the_sample_budget_is_a_setting(audio_files: dict[str, Path]) -> None:
    path = audio_files["sine_s16_44100_stereo.wav"]
    samples = round(44100 * TONE_SECONDS) * 2
    with pytest.raises(AudioTooLarge, match="2 channels at 44100 Hz"):
        decode(path, DecodeLimits(max_samples=samples - 1))
    assert decode(path, DecodeLimits(max_samples=samples)).samples.size == samples


def test_decode_mono_is_decode_mixed_down_and_resampled(audio_files: dict[str, Path]) -> None:
    for name in ("tone.mp3", "tone.flac", "sine_s16_44100_stereo.wav", "sine_s16_8000_3ch.wav"):
        whole = decode(audio_files[name])
        mono = decode_mono(audio_files[name])
        expected = soxr.resample(downmix(whole.samples), whole.rate, TELEPHONY_RATE, quality="VHQ")
        assert (mono.rate, mono.format, mono.samples.shape[1]) == (TELEPHONY_RATE, whole.format, 1)
        np.testing.assert_allclose(mono.samples[:, 0], expected, atol=1e-6)


def test_decode_mono_holds_its_output_not_the_input(tmp_path: Path) -> None:
    """20 s of 7.1 at 96 kHz is 61 MB of float32; mixed and resampled block by block it is 0.6 MB."""
    data = flac_bomb(tmp_path / "wide.flac", 20, rate=96000).read_bytes()
    limits = DecodeLimits(max_samples=10**9)
    decoded = decode_mono(data, limits)
    assert decoded.samples.shape == (20 * TELEPHONY_RATE, 1)
    assert _peak_bytes(lambda: decode_mono(data, limits)) < 8 * 1024 * 1024
