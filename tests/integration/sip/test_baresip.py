"""baresip (Debian), an independent SIP user agent, as the callee (issue 12): it auto-answers, we play
a prompt that it records at its side, and it presses 1 by RFC 4733. Headless: the `cons` module takes
key presses as UDP datagrams (menu: a digit during a call sends DTMF), `sndfile` dumps the audio it
decoded, `aufile` plays a WAV as its microphone, `aubridge` is a player that needs no sound card.
Skipped when baresip is not installed (scripts/bootstrap.sh installs baresip-core for the tests)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.procfs import free_block

from .conftest import Agent, best_envelope_correlation, free_udp_port, read_wav, write_prompt

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60),
              pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip is not installed")]
MODULES = Path("/usr/lib/baresip/modules")


class Baresip:
    """One baresip process on 127.0.0.1 with a config of its own; ended by its PID."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.sip_port, self.cons_port = free_udp_port(), free_udp_port()
        rtp = free_block(40)
        silence = home / "mic.wav"
        write_prompt(silence, 20.0)  # what baresip "speaks" toward us
        (home / "snd").mkdir()
        (home / "accounts").write_text("<sip:bob@127.0.0.1>;regint=0;answermode=auto\n")
        (home / "config").write_text("\n".join([
            "poll_method epoll", f"sip_listen 127.0.0.1:{self.sip_port}", "net_interface 127.0.0.1",
            "dns_server 127.0.0.1:53", f"rtp_ports {rtp}-{rtp + 39}",
            f"audio_source aufile,{silence}", "audio_player aubridge,ivrgate", "audio_alert aubridge,ivrgate",
            f"module_path {MODULES}", "module g711.so", "module aufile.so", "module aubridge.so",
            "module sndfile.so", "module cons.so", "module account.so", "module_app menu.so",
            f"cons_listen 127.0.0.1:{self.cons_port}", f"snd_path {home / 'snd'}", ""]))
        self.proc = subprocess.Popen(["baresip", "-f", str(home), "-t", "50"], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.ready.wait(20) and self.proc.poll() is None, "".join(self.lines)

    @property
    def uri(self) -> str:
        return f"sip:bob@127.0.0.1:{self.sip_port}"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "baresip is ready" in line:
                self.ready.set()
        self.ready.set()

    def press(self, key: str) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(key.encode(), ("127.0.0.1", self.cons_port))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.press("q")  # the menu's quit: the dumps are closed properly
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def heard(self) -> np.ndarray:
        (dump,) = (self.home / "snd").glob("*-dec.wav")
        return read_wav(dump)


@pytest.fixture
def baresip(tmp_path: Path) -> Iterator[Callable[[], Baresip]]:
    started: list[Baresip] = []

    def start() -> Baresip:
        home = tmp_path / f"baresip{len(started)}"
        home.mkdir()
        started.append(Baresip(home))
        return started[-1]

    yield start
    for b in started:
        b.stop()


def test_baresip_answers_hears_the_prompt_and_presses_1(make_ua: Callable[..., Agent],
                                                         baresip: Callable[[], Baresip],
                                                         tmp_path: Path) -> None:
    far = baresip()
    prompt = tmp_path / "prompt.wav"
    played = write_prompt(prompt, seconds=3.0)
    agent = make_ua()
    agent.ua.call("c1", far.uri)
    agent.log.wait("c1", "answered")
    agent.ua.play("c1", prompt)
    agent.log.wait("c1", "playback_done", timeout=10)
    far.press("1")
    (digit,) = agent.log.wait("c1", "digit")
    assert (digit.digit, digit.source) == ("1", "rfc4733")
    agent.ua.hangup("c1")
    agent.log.wait("c1", "disconnected")
    deadline = time.monotonic() + 10
    while "terminated" not in "".join(far.lines) and time.monotonic() < deadline:
        time.sleep(0.1)  # baresip logs the call's end, then closes its dumps
    far.stop()
    heard = far.heard()
    middle = played[800:-1600]  # the dump starts with the media and ends with our BYE: 2.7 s of 3
    assert best_envelope_correlation(middle, heard, 8000) > 0.9
    assert best_envelope_correlation(middle[::-1].copy(), heard, 8000) < 0.6
