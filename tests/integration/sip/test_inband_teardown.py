"""Stress the end of calls with in-band DTMF detection on (issue 3): no engine may crash.

Engines used to die at the end of such calls (exit -11, exit -6 on a pjlib assertion, an
AttributeError in `Tap.onFrameReceived`): the in-band tap and the tone source were freed while
pjmedia's clock thread could still call them. Here one real engine process (4 calls at a time)
places short calls to two SIPp UAS on 127.0.0.1 that answer with PCMU only and send a DTMF tone:
one hangs up itself after a random 0-800 ms (far-end BYE during detection), the other waits while
we hang up after a random 0-800 ms (our BYE during detection). Every call also plays a WAV and
sends a tone in-band, so the player, the tap and the tone source are all torn down, at every
moment of the call's start. The engine's stderr goes to a file that must hold no traceback and no
assertion, and the pool must see no engine exit.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import stat
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ivr.events import SipEvent
from ivr.pool import CRASHED, CallHandle, EnginePool
from ivr.settings import SipSettings

from .conftest import free_udp_port

pytestmark = pytest.mark.integration

CALLS = 200
CONCURRENCY = 4
MAX_HOLD_MS = 800
ANSWER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="teardown UAS">
  <recv request="INVITE" crlf="true" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="remote_from"/>
    </action>
  </recv>
  <send retrans="500"><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]Teardown[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=teardown 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
  ]]></send>
  <recv request="ACK" crlf="true"/>
  <nop><action><exec play_pcap_audio="pcap/inband_1.pcap"/></action></nop>
"""
FAR_BYE = ANSWER + """  <pause distribution="uniform" min="0" max="HOLD"/>
  <send retrans="500"><![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:uas@[local_ip]:[local_port]>;tag=[pid]Teardown[call_number]
      To: [$remote_from]
      [last_Call-ID:]
      CSeq: 2 BYE
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <recv response="200" crlf="true"/>
</scenario>
""".replace("HOLD", str(MAX_HOLD_MS))
WAIT_BYE = ANSWER + """  <Reference variables="remote_from"/>
  <recv request="BYE"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
  ]]></send>
</scenario>
"""
ENGINE_FAILURES = ("Traceback", "Exception ignored", "AttributeError", "Assertion", "Segmentation",
                   "Fatal Python error")


def port_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@pytest.fixture
def uas(sipp_workdir: Path) -> Iterator[Callable[[str, str], str]]:
    """Start a SIPp UAS from scenario text; its URI. Each is ended by its PID after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, text: str) -> str:
        scenario = sipp_workdir / f"{name}.{time.monotonic_ns()}.xml"
        scenario.write_text(text)
        port, media = free_udp_port(), free_udp_port(pair=True)
        cmd = ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-mp", str(media),
               "-nostdin", "-timeout", "300s", "-trace_err", "-error_file", str(scenario) + ".err"]
        proc = subprocess.Popen(cmd, cwd=sipp_workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        deadline = time.monotonic() + 5.0
        while not port_bound(port):
            assert proc.poll() is None, "SIPp exited at start-up"
            assert time.monotonic() < deadline, "SIPp did not bind its port"
            time.sleep(0.02)
        return f"sip:1000@127.0.0.1:{port}"

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def logging_python(tmp_path: Path) -> tuple[str, Path]:
    """A 'python' for the pool that appends the engine's stderr to a file we can read afterwards."""
    log = tmp_path / "engine.stderr"
    wrapper = tmp_path / "python-engine"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@" 2>>"{log}"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper), log


def write_wav(path: Path, seconds: float = 1.0) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(int(seconds * 8000) * 2))
    return path


@dataclass
class Stats:
    finals: list[SipEvent] = field(default_factory=list)
    inband_digits: int = 0


async def one_call(pool: EnginePool, uri: str, hangup_after_s: float | None, wav: Path, stats: Stats) -> None:
    handle: CallHandle = await pool.place_call(uri)
    hanger: asyncio.Task[None] | None = None
    async for event in handle.events():
        if event.kind == "media":
            await handle.play(wav)
            await handle.send_dtmf("1", "inband")
            if hangup_after_s is not None:
                hanger = asyncio.create_task(hang_up_later(handle, hangup_after_s))
        elif event.kind == "digit" and event.source == "inband":
            stats.inband_digits += 1
        elif event.kind == "disconnected":
            stats.finals.append(event)
    if hanger is not None:
        await hanger


async def hang_up_later(handle: CallHandle, delay_s: float) -> None:
    await asyncio.sleep(delay_s)
    await handle.hangup()


async def stress(settings: SipSettings, python: str, uris: tuple[str, str],
                 wav: Path) -> tuple[Stats, list[int | None]]:
    rng = random.Random(3)
    stats = Stats()
    pool = EnginePool(settings, processes=1, python=python)
    await pool.start()
    pids = list(pool.pids)
    try:
        limit = asyncio.Semaphore(CONCURRENCY)

        async def bounded(i: int) -> None:
            async with limit:
                far_end_hangs_up = i % 2 == 0
                delay = None if far_end_hangs_up else rng.uniform(0, MAX_HOLD_MS / 1000)
                await one_call(pool, uris[0] if far_end_hangs_up else uris[1], delay, wav, stats)

        async with asyncio.timeout(240):
            await asyncio.gather(*(bounded(i) for i in range(CALLS)))
        pids += pool.pids
    finally:
        await pool.stop()
    return stats, pids


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_no_engine_dies_at_the_end_of_inband_calls(
    uas: Callable[[str, str], str], tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ivr.pool")
    python, stderr_log = logging_python(tmp_path)
    base = free_udp_port()
    settings = SipSettings(port=base, rtp_port=free_udp_port(pair=True), rtp_ports_per_process=16,
                           processes=1, inband_dtmf="always")
    uris = (uas("far_bye", FAR_BYE), uas("wait_bye", WAIT_BYE))
    stats, pids = asyncio.run(stress(settings, python, uris, write_wav(tmp_path / "prompt.wav")))

    exits = [r.getMessage() for r in caplog.records if "exited with status" in r.getMessage()]
    engine_log = stderr_log.read_text(errors="replace") if stderr_log.exists() else ""
    failures = [line for line in engine_log.splitlines() if any(f in line for f in ENGINE_FAILURES)]
    crashed = [e for e in stats.finals if e.reason == CRASHED]
    assert (exits, failures, crashed) == ([], [], [])
    assert len(set(pids)) == 1, f"the engine was replaced: {pids}"
    assert len(stats.finals) == CALLS
    no_code = [e for e in stats.finals if e.sip_code is None]
    assert no_code == [], no_code[:3]
    assert stats.inband_digits > 0, "in-band detection never heard the far end's tone"
