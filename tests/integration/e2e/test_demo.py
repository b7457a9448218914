"""The README's main command: `ivrgate demo` calls the built-in test phone and shows the captured key,
whichever way the phone sends it; `--press 91` replays the prompt before answering."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.e2e.conftest import ROOT, clean_env
from tests.integration.pool.conftest import free_block


def run_demo(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    rtp = free_block(1100)  # engines use rtp .. rtp + 40, the phone rtp + 1000 ..
    env = clean_env(IVRGATE_SIP__PORT=str(free_block(1)), IVRGATE_SIP__RTP_PORT=str(rtp),
                    IVRGATE_SIP__PROCESSES="1")
    return subprocess.run([sys.executable, "-m", "api", "--data", str(data_dir), "demo",
                           "--phone-port", str(free_block(1)), "--wait", "1.5", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.parametrize("mode", ["rfc4733", "info", "inband"])
def test_demo_shows_the_key_the_phone_pressed(tmp_path: Path, mode: str) -> None:
    done = run_demo(tmp_path, "--mode", mode)
    assert done.returncode == 0, (done.stdout, done.stderr)
    answered = [ln for ln in done.stdout.splitlines() if ln.startswith("Voice call answered, duration ")]
    assert answered and answered[-1].endswith(". R = 1")
    assert f"1 {mode}" in done.stdout  # the timeline's digit line names the transport


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_demo_nine_replays_the_prompt_then_one_answers(tmp_path: Path) -> None:
    done = run_demo(tmp_path, "--press", "91")
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "main #1" in done.stdout and "main #2" in done.stdout
    assert "R = 1" in done.stdout


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_twenty_calls_at_once_all_answered_with_1(tmp_path: Path) -> None:
    """Issue 12's Must-show: 20 calls at once (5 engine processes) to the test phone (5 processes behind
    one front), every one answered with R = 1; before, the phone took 4 and refused the rest as Busy."""
    rtp = free_block(1300)  # engines rtp .. rtp + 200, the phone's processes rtp + 1000 .. rtp + 1200
    env = clean_env(IVRGATE_SIP__PORT=str(free_block(5)), IVRGATE_SIP__RTP_PORT=str(rtp))
    done = subprocess.run([sys.executable, "-m", "api", "--data", str(tmp_path), "demo", "--calls", "20",
                           "--phone-port", str(free_block(1)), "--wait", "1.5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=280, env=env)
    assert done.returncode == 0, (done.stdout, done.stderr)
    lines = [ln.split(None, 1)[1] for ln in done.stdout.splitlines() if ln.strip().startswith("demo-")]
    assert len(lines) == 20
    assert all(ln.startswith("Voice call answered, duration ") and ln.endswith(". R = 1") for ln in lines)
    assert "20 of 20 calls answered, 20 with R = 1" in done.stdout
    assert "Busy" not in done.stdout
