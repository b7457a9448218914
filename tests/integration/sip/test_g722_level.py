"""G.722 at the right level both ways (issue 12): the prompt decoded at the far end by ffmpeg (a
decoder independent of pjmedia) is as loud on G.722 as on PCMU, and a G.722 tone encoded by ffmpeg is
recorded at the level it was sent. pjmedia's default level shift made the first 6 dB too quiet and the
second 6 dB too loud."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from audio.g711 import ulaw_decode
from tests.procfs import free_block, wait_sipp_ready

from .conftest import SIPP_DIR, Agent, Sipp, load_make_pcaps, read_wav

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60),
              pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg (G.722 codec)")]
AMPLITUDE = 8000
TONE_DB = 20 * np.log10(AMPLITUDE / np.sqrt(2))
"""RMS level of the test tones, dB relative to one 16-bit step."""


def rms_db(pcm: np.ndarray) -> float:
    x = pcm.astype(np.float64)
    return float(20 * np.log10(np.sqrt(np.mean(x**2))))


def middle_second(pcm: np.ndarray, rate: int) -> np.ndarray:
    """The middle second of the loud part (the tone without its edges)."""
    loud = np.flatnonzero(np.abs(pcm) > 100)
    assert len(loud), "nothing loud was received"
    assert (loud[-1] - loud[0]) / rate > 1.5, "less than 1.5 s of tone"
    middle = (loud[0] + loud[-1]) // 2
    return pcm[middle - rate // 2: middle + rate // 2]


@pytest.fixture
def sink_sipp(sipp_workdir: Path) -> Iterator[Callable[[str], tuple[Sipp, socket.socket]]]:
    """SIPp running a *_sink scenario (it asks for RTP on media port + 4) and a socket bound there."""
    started: list[tuple[Sipp, socket.socket]] = []

    def start(scenario: str) -> tuple[Sipp, socket.socket]:
        sip, media = free_block(1), free_block(6)
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", media + 4))
        sink.settimeout(0.05)
        log = sipp_workdir / f"{scenario}.{sip}.log"
        proc = subprocess.Popen(["sipp", "-sf", str(SIPP_DIR / scenario), "-i", "127.0.0.1", "-p", str(sip),
                                 "-mp", str(media), "-m", "1", "-nostdin", "-timeout", "30", "-trace_err",
                                 "-error_file", str(log)], cwd=sipp_workdir,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append((Sipp(proc, sip, log), sink))
        wait_sipp_ready(proc, sip, log)
        return started[-1]

    yield start
    for peer, sink in started:
        sink.close()
        if peer.proc.poll() is None:
            peer.proc.kill()
            peer.proc.wait(5)


def write_tone(path: Path, seconds: float = 2.0, hz: float = 440.0) -> Path:
    t = np.arange(int(8000 * seconds)) / 8000
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.round(AMPLITUDE * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes())
    return path


def received_payload(agent: Agent, ref: str, sink: socket.socket, payload_type: int) -> bytes:
    """RTP payloads of `payload_type` that reach `sink` until the prompt has been played, in order."""
    packets: dict[int, bytes] = {}
    while not agent.log.of(ref, "playback_done"):
        try:
            data = sink.recv(2048)
        except TimeoutError:
            continue
        if data[1] & 0x7F == payload_type:
            packets[struct.unpack("!H", data[2:4])[0]] = data[12 + 4 * (data[0] & 0x0F):]
    return b"".join(packets[seq] for seq in sorted(packets))


def decode_g722(payload: bytes) -> np.ndarray:
    out = subprocess.run(["ffmpeg", "-v", "error", "-f", "g722", "-i", "pipe:", "-f", "s16le", "-ac", "1",
                          "pipe:"], input=payload, capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype="<i2")


def sent_level(agent: Agent, start: Callable[[str], tuple[Sipp, socket.socket]], ref: str, scenario: str,
               payload_type: int, prompt: Path) -> float:
    peer, sink = start(scenario)
    agent.ua.call(ref, peer.uri)
    agent.ua.play(ref, prompt)
    payload = received_payload(agent, ref, sink, payload_type)
    agent.ua.hangup(ref)
    agent.log.wait(ref, "disconnected")
    assert peer.wait() == 0, peer.errors()
    if payload_type == 9:
        return rms_db(middle_second(decode_g722(payload), 16000))
    return rms_db(middle_second(ulaw_decode(np.frombuffer(payload, dtype=np.uint8)), 8000))


SinkStarter = Callable[[str], tuple[Sipp, socket.socket]]


def test_prompt_as_loud_on_g722_as_on_pcmu(make_ua: Callable[..., Agent], sink_sipp: SinkStarter,
                                           tmp_path: Path) -> None:
    agent = make_ua(inband_dtmf="never")
    prompt = write_tone(tmp_path / "tone.wav")
    pcmu = sent_level(agent, sink_sipp, "u", "uas_pcmu_sink.xml", 0, prompt)
    g722 = sent_level(agent, sink_sipp, "g", "uas_g722_sink.xml", 9, prompt)
    assert abs(pcmu - TONE_DB) < 0.5  # G.711 itself is level-exact
    assert abs(g722 - pcmu) < 1.0, f"G.722 {g722:.2f} dB against PCMU {pcmu:.2f} dB"


def test_g722_received_at_its_level(make_ua: Callable[..., Agent], sipp: Callable[..., Sipp],
                                    sipp_workdir: Path, tmp_path: Path) -> None:
    make_pcaps = load_make_pcaps()
    assert make_pcaps.G722_TONE_AMPLITUDE == AMPLITUDE
    assert (sipp_workdir / "pcap" / "g722_tone.pcap").exists()
    agent, peer = make_ua(inband_dtmf="never"), sipp("uas_g722_tone.xml")
    agent.ua.call("c1", peer.uri)
    agent.ua.record("c1", tmp_path / "heard.wav")  # starts with the media, before the tone
    assert agent.log.wait("c1", "disconnected")[0].sip_code == 200  # SIPp's BYE after the tone
    agent.log.wait("c1", "recording_done")
    agent.ua.stop()  # 'recording_done' comes a clock tick before pjmedia has closed the WAV; stop() closes it
    heard = rms_db(middle_second(read_wav(tmp_path / "heard.wav"), 8000))
    assert abs(heard - TONE_DB) < 1.0, f"heard {heard:.2f} dB, sent {TONE_DB:.2f} dB"
    assert peer.wait() == 0, peer.errors()
