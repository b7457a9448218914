"""The WAV files ivrgate writes: exact header bytes, readable by `wave` and libsndfile, written atomically."""

from __future__ import annotations

import io
import os
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audio.errors import CorruptAudio, UnsupportedFormat
from audio.wav import read_wav, wav_bytes, write_wav

PCM = np.array([0, 1, -1, 32767, -32768, 1000], dtype=np.int16)


def test_header_bytes_exactly() -> None:
    data = wav_bytes(PCM, 8000)
    expected_header = (
        b"RIFF" + (36 + 12).to_bytes(4, "little") + b"WAVE"
        + b"fmt " + bytes.fromhex("10000000" "0100" "0100" "401f0000" "803e0000" "0200" "1000")
        + b"data" + (12).to_bytes(4, "little")
    )
    assert data[:44] == expected_header
    assert data[44:] == bytes.fromhex("0000" "0100" "ffff" "ff7f" "0080" "e803")


def test_header_fields_by_struct() -> None:
    data = wav_bytes(PCM, 16000)
    fields = struct.unpack("<4sI4s4sIHHIIHH4sI", data[:44])
    assert fields == (b"RIFF", len(data) - 8, b"WAVE", b"fmt ", 16, 1, 1, 16000, 32000, 2, 16, b"data", 12)
    assert len(data) == 44 + 2 * PCM.size


def test_wave_module_reads_it() -> None:
    with wave.open(io.BytesIO(wav_bytes(PCM)), "rb") as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, 8000)
        assert reader.getcomptype() == "NONE"
        assert reader.getnframes() == PCM.size
        assert np.frombuffer(reader.readframes(PCM.size), dtype="<i2").tolist() == PCM.tolist()


def test_libsndfile_reads_it() -> None:
    samples, rate = soundfile.read(io.BytesIO(wav_bytes(PCM)), dtype="int16")
    assert rate == 8000
    np.testing.assert_array_equal(samples, PCM)


def test_empty_pcm_is_a_valid_file() -> None:
    data = wav_bytes(np.zeros(0, dtype=np.int16))
    assert len(data) == 44
    assert read_wav(data)[0].size == 0


@pytest.mark.parametrize("bad", [np.zeros(4, dtype=np.float32), np.zeros((2, 2), dtype=np.int16)])
def test_refuses_anything_but_mono_int16(bad: np.ndarray) -> None:
    with pytest.raises(TypeError):
        wav_bytes(bad)


def test_refuses_a_bad_rate() -> None:
    with pytest.raises(ValueError):
        wav_bytes(PCM, 0)


def test_write_and_read_back(tmp_path: Path) -> None:
    target = tmp_path / "prompt.wav"
    write_wav(target, PCM, 8000)
    assert target.read_bytes() == wav_bytes(PCM, 8000)
    pcm, rate = read_wav(target)
    assert rate == 8000
    np.testing.assert_array_equal(pcm, PCM)
    assert pcm.dtype == np.int16 and pcm.flags.writeable
    assert sorted(os.listdir(tmp_path)) == ["prompt.wav"]


def test_write_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "prompt.wav"
    write_wav(target, PCM)
    write_wav(target, PCM[:2])
    assert read_wav(target)[0].tolist() == PCM[:2].tolist()


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "prompt.wav"
    write_wav(target, PCM)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_wav(target, PCM[:1])
    assert target.read_bytes() == wav_bytes(PCM)
    assert sorted(os.listdir(tmp_path)) == ["prompt.wav"]


def test_read_wav_skips_extra_chunks() -> None:
    data = wav_bytes(PCM)
    extra = b"LIST" + struct.pack("<I", 5) + b"hello" + b"\x00"
    with_list = data[:4] + struct.pack("<I", len(data) - 8 + len(extra)) + data[8:36] + extra + data[36:]
    np.testing.assert_array_equal(read_wav(with_list)[0], PCM)


def test_read_wav_refuses_other_layouts(tmp_path: Path) -> None:
    stereo = tmp_path / "stereo.wav"
    soundfile.write(stereo, np.zeros((10, 2)), 8000, subtype="PCM_16")
    with pytest.raises(UnsupportedFormat):
        read_wav(stereo)
    with pytest.raises(UnsupportedFormat):
        read_wav(b"ID3 not a wav file at all")
    with pytest.raises(CorruptAudio):
        read_wav(wav_bytes(PCM)[:12])


def test_read_wav_of_a_cut_file_keeps_whole_samples() -> None:
    data = wav_bytes(PCM)[:-3]
    assert read_wav(data)[0].tolist() == PCM[:-2].tolist()
