"""`ivrgate dtmf FILE` prints one `<digit> <start> <end>` line per digit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

from api.cli.main import main
from audio.dtmf import generate


def test_dtmf_command_lists_digits_of_a_wav(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys.wav"
    soundfile.write(path, np.concatenate([np.zeros(800, np.int16), generate("4#", level_dbm0=-20)]), 8000)
    assert main(["--data", str(tmp_path), "dtmf", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["4 0.100 0.200", "# 0.300 0.400"]


def test_dtmf_command_resamples_without_normalising(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # -45 dBm0 is below the detector's floor: loudness normalisation would have lifted it into range.
    quiet = generate("1", level_dbm0=-45).astype(np.float32) / 32768
    loud = generate("9", level_dbm0=-15).astype(np.float32) / 32768
    path = tmp_path / "keys.flac"
    soundfile.write(path, soxr.resample(np.concatenate([quiet, loud]), 8000, 44100), 44100)
    assert main(["--data", str(tmp_path), "dtmf", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["9 0.200 0.300"]


def test_dtmf_command_prints_nothing_for_silence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "silence.wav"
    soundfile.write(path, np.zeros(8000, np.int16), 8000)
    assert main(["--data", str(tmp_path), "dtmf", str(path)]) == 0
    assert capsys.readouterr().out == ""
