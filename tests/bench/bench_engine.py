"""Engine process figures (run: python -m tests.bench.bench_engine [--calls 4,8,20,40]).

Prints, for real engine processes (ivr.pool) calling a real SIPp UAS on 127.0.0.1 that plays G.711
audio (Debian sip-tester's g711a.pcap) while each engine plays a looped WAV into the call:
- idle engine processes (`--idle-engines` of them, over `--idle-window` seconds, 2 s after 'ready' so
  that the background import of audio.dtmf is over): memory each (RSS, PSS, private anonymous),
  CPU % of a core each, and whether numpy is loaded;
- for N concurrent calls (N/4 engines): RSS per call and CPU % of one core per call over a window;
- call setup time (place_call -> 'answered'), one call at a time and N at once.
Asserts nothing; needs `sipp`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ivr.pool import CallHandle, EnginePool
from ivr.settings import SipSettings
from tests.procfs import cpu_pct, free_block, memory_kib, sample, write_tone

PCAP = Path("/usr/share/sip-tester/g711a.pcap")
UAS_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="bench UAS: answer PCMA, play audio, wait for BYE">
  <recv request="INVITE" crlf="true"/>
  <send retrans="500"><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]Bench[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=bench 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 121
      a=rtpmap:8 PCMA/8000
      a=rtpmap:121 telephone-event/8000
  ]]></send>
  <recv request="ACK" crlf="true"/>
  <nop><action><exec play_pcap_audio="PCAP"/></action></nop>
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


def _settings(processes: int, inband: str) -> SipSettings:
    per = 16
    return replace(SipSettings(), port=free_block(processes), rtp_port=free_block(processes * per),
                   rtp_ports_per_process=per, processes=processes, inband_dtmf=inband)


async def _until(handle: CallHandle, kind: str) -> None:
    async for event in handle.events():
        if event.kind == kind:
            return
        if event.kind == "disconnected":
            raise RuntimeError(f"call {handle.ref} ended before {kind}: {event}")


async def idle_engines(count: int, window_s: float, inband: str, python: str) -> None:
    pool = EnginePool(_settings(count, inband), processes=count, python=python)
    await pool.start()
    await asyncio.sleep(2.0)
    pids = [p for p in pool.pids if p is not None]
    mems = [memory_kib(p) for p in pids]
    numpy = sum("numpy" in Path(f"/proc/{p}/maps").read_text() for p in pids)
    before = sample(pids)
    await asyncio.sleep(window_s)
    cpu = cpu_pct(before, sample(pids))
    avg = {k: sum(m[k] for m in mems) / len(mems) / 1024 for k in ("rss", "pss", "anon")}
    print(f"idle engines ({len(pids)}, in-band DTMF {inband}, numpy loaded in {numpy}): each RSS "
          f"{avg['rss']:.1f} MiB, PSS {avg['pss']:.1f} MiB, private anonymous {avg['anon']:.1f} MiB; "
          f"CPU {cpu / len(pids):.2f} % of a core each ({cpu:.1f} % in all, over {window_s:.0f} s)")
    await pool.stop()


async def calls(n: int, uri: str, wav: Path, window_s: float, inband: str, python: str) -> None:
    processes = math.ceil(n / 4)
    pool = EnginePool(_settings(processes, inband), processes=processes, python=python)
    await pool.start()
    pids = [p for p in pool.pids if p is not None]
    idle = sum(memory_kib(p)["rss"] for p in pids)
    started = time.perf_counter()
    handles = [await pool.place_call(uri) for _ in range(n)]
    await asyncio.gather(*(_until(h, "answered") for h in handles))
    setup_all = time.perf_counter() - started
    for h in handles:
        await h.play(wav, loop=True)
    await asyncio.sleep(1.0)
    before = sample(pids)
    await asyncio.sleep(window_s)
    cpu = cpu_pct(before, sample(pids))
    busy = sum(memory_kib(p)["rss"] for p in pids)
    pss = sum(memory_kib(p)["pss"] for p in pids)
    for h in handles:
        await h.hangup()
    await asyncio.gather(*(_until(h, "disconnected") for h in handles), return_exceptions=True)
    await pool.stop()
    print(f"{n:3d} calls / {processes:2d} engines (in-band DTMF {inband}): "
          f"all answered in {setup_all * 1000:.0f} ms; engines RSS {busy / 1024:.0f} MiB "
          f"(PSS {pss / 1024:.0f} MiB; {(busy - idle) / n / 1024:.2f} MiB per call above idle, "
          f"PSS {pss / n / 1024:.1f} MiB per call all in); "
          f"CPU {cpu:.1f} % of a core, {cpu / n:.2f} % per call")


async def setup_time(uri: str, python: str, count: int = 30) -> None:
    pool = EnginePool(_settings(1, "auto"), processes=1, python=python)
    await pool.start()
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        handle = await pool.place_call(uri)
        await _until(handle, "answered")
        times.append((time.perf_counter() - t0) * 1000)
        await handle.hangup()
        await _until(handle, "disconnected")
    await pool.stop()
    times.sort()
    print(f"call setup, one at a time ({count} calls): median {statistics.median(times):.1f} ms, "
          f"p90 {times[int(0.9 * len(times))]:.1f} ms, max {times[-1]:.1f} ms")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", default="4,8,20,40", help="comma-separated concurrent call counts")
    parser.add_argument("--window", type=float, default=5.0, help="CPU measurement window, seconds")
    parser.add_argument("--inband", default="auto", help="inband_dtmf setting: auto | always | never")
    parser.add_argument("--idle-engines", type=int, default=10, help="idle engines measured together")
    parser.add_argument("--idle-window", type=float, default=10.0, help="idle CPU window, seconds")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter (or wrapper script) the engines run with, to compare builds")
    parser.add_argument("--only-idle", action="store_true", help="measure idle engines and set-up time only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "uas.xml").write_text(UAS_XML.replace("PCAP", str(PCAP)))
        wav = work / "prompt.wav"
        write_tone(wav, 5.0)
        port = free_block(1)
        sipp = subprocess.Popen(["sipp", "-sf", str(work / "uas.xml"), "-i", "127.0.0.1", "-p", str(port),
                                 "-mp", str(free_block(4)), "-nostdin"],
                                cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            uri = f"sip:1000@127.0.0.1:{port}"
            for inband in ("never", args.inband):
                asyncio.run(idle_engines(args.idle_engines, args.idle_window, inband, args.python))
            asyncio.run(setup_time(uri, args.python))
            for n in (int(x) for x in args.calls.split(",")) if not args.only_idle else ():
                asyncio.run(calls(n, uri, wav, args.window, args.inband, args.python))
        finally:
            sipp.terminate()
            sipp.wait(10)


if __name__ == "__main__":
    main()
