"""Call figures (run: python -m tests.bench.bench_calls [--calls 50,100,250,500] [--inband 0.2]).

For N concurrent calls (N/4 engine processes: the wheel's PJSUA_MAX_CALLS is 4) placed at once with
`ivr.dialer.run_call` (what the voice worker runs for each message) to SIPp UAS processes on 127.0.0.1,
each call playing a prompt and capturing one key press, prints:
- calls set up per second: N / (last 'answered' - first call placed);
- CPU % of one core per call while all N calls are up (engines + this process, from /proc/<pid>/stat),
  and the same for the idle pool before the calls (the engines' poll loops);
- memory per call: PSS of engines + this process during the calls / N (total), and its growth over the
  idle pool / N (marginal), from /proc/<pid>/smaps_rollup;
- failed calls: any outcome other than `Voice call answered, duration N seconds. R = 1`.
A share of the calls (--inband, 20 % by default) goes to a UAS that answers PCMU without
telephone-event and sends the key as a tone, so in-band detection (numpy Goertzel) runs on them.
Asserts nothing; needs `sipp` (Debian sip-tester).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.dialer import CallJob, CallReport, run_call
from ivr.pool import EnginePool, RestartPolicy
from ivr.settings import DialerSettings, SipSettings
from tests.procfs import cpu_pct, pss_kib, sample, write_tone
from tests.procfs import free_block as _free_block

ROOT = Path(__file__).resolve().parents[2]
RTP_PER_ENGINE = 16
HOLD_MS = 8000
"""How long each UAS keeps the call before pressing 1: every call is up while CPU is measured."""
WINDOW_S = 3.0
SDP_RFC4733 = """m=audio [media_port] RTP/AVP 0 [$te_pt]
      a=rtpmap:0 PCMU/8000
      a=rtpmap:[$te_pt] telephone-event/8000
      a=fmtp:[$te_pt] 0-16"""
SDP_INBAND = """m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000"""
UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="bench UAS: answer, hold, press 1, wait for BYE">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="a=rtpmap:([0-9]+) telephone-event/8000" search_in="body" check_it="false"
            assign_to="te,te_pt"/>
    </action>
  </recv>
  <Reference variables="te,te_pt"/>
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
      SDP
  ]]></send>
  <recv request="ACK" crlf="true"/>
  <pause milliseconds="HOLD"/>
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


@dataclass
class Figures:
    calls: int
    engines: int
    inband: int
    setup_per_s: float
    cpu_idle_pct: float
    cpu_pct: float
    pss_idle_mib: float
    pss_mib: float
    failed: int
    parent_cpu_pct: float
    """This process (asyncio: dialer, pool, flows) from the first call placed until every call ended."""
    crashed: int
    """Engine processes that died during the run (replaced by the pool)."""
    wall_s: float


def total_pss(pids: list[int]) -> int:
    """PSS KiB of `pids`. Run it off the event loop (asyncio.to_thread): on a saturated machine reading
    smaps_rollup of 126 processes took 17.8 s, and the dialer served no call meanwhile (its stop and
    hang-up after the key press then came after the engines' 30 s RTP timeout had ended the calls)."""
    return sum(pss_kib(p) for p in pids)


def free_block(count: int) -> int:
    """A base port with `count` free UDP ports from it, from a range wide enough for 500 calls."""
    return _free_block(count, low=20000, high=60000, tries=500)


def start_sipp(work: Path, name: str, sdp: str, pcap: str, calls: int) -> tuple[subprocess.Popen[bytes], str]:
    scenario = work / f"{name}.xml"
    scenario.write_text(UAS.replace("SDP", sdp).replace("HOLD", str(HOLD_MS)).replace("PCAP", pcap))
    port, media = free_block(1), free_block(4)
    cmd = ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-mp", str(media),
           "-m", str(max(calls, 1)), "-l", str(calls + 100), "-nostdin", "-timeout", "300s",
           "-trace_err", "-error_file", str(work / f"{name}.{port}.err")]
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    if proc.poll() is not None:
        raise RuntimeError(f"sipp {name} exited at start-up")
    return proc, f"sip:1000@127.0.0.1:{port}"


async def run_calls(n: int, inband_share: float, work: Path, prompt: Path,
                    trace: Path | None = None) -> Figures:
    began = time.perf_counter()
    engines = math.ceil(n / 4)
    inband = round(n * inband_share)
    first = free_block(engines * (RTP_PER_ENGINE + 1))  # RTP ranges, then the SIP ports: never overlapping
    settings = SipSettings(port=first + engines * RTP_PER_ENGINE, rtp_port=first,
                           rtp_ports_per_process=RTP_PER_ENGINE, processes=engines, ring_timeout_s=60.0)
    peers: list[tuple[subprocess.Popen[bytes], str]] = []
    pool = EnginePool(settings, policy=RestartPolicy(ready_timeout_s=120.0, ping_timeout_s=30.0))
    try:
        peers.append(start_sipp(work, f"rfc{n}", SDP_RFC4733, "pcap/dtmf_2833_1.pcap", n - inband))
        if inband:
            peers.append(start_sipp(work, f"inband{n}", SDP_INBAND, "pcap/inband_1.pcap", inband))
        await pool.start()
        pids = [os.getpid(), *(p for p in pool.pids if p is not None)]
        await asyncio.sleep(1.0)
        pss_idle = await asyncio.to_thread(total_pss, pids)
        idle = await asyncio.to_thread(sample, pids)
        await asyncio.sleep(WINDOW_S)
        cpu_idle = cpu_pct(idle, await asyncio.to_thread(sample, pids))
        uris = [peers[0][1]] * (n - inband) + ([peers[1][1]] * inband if inband else [])
        dialing = DialerSettings(response_timeout_s=30.0, max_call_s=60.0)
        wait0 = _sched_wait()
        lag = LoopLag()
        lag_task = asyncio.create_task(lag.run())
        parent = sample([os.getpid()])
        jobs = [CallJob(job_id=f"b{i}", uri=uri, prompt=prompt, response=True) for i, uri in enumerate(uris)]
        futures = [asyncio.create_task(run_call(pool, job, dialing)) for job in jobs]
        while pool.in_use < n and not any(f.done() for f in futures):
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # every call answered and playing
        t_pss = time.perf_counter()
        pss_busy = await asyncio.to_thread(total_pss, pids)
        t_pss = time.perf_counter() - t_pss
        busy = await asyncio.to_thread(sample, pids)
        await asyncio.sleep(WINDOW_S)
        cpu_busy = cpu_pct(busy, await asyncio.to_thread(sample, pids))
        async with asyncio.timeout(HOLD_MS / 1000 + 60):
            reports: list[CallReport] = await asyncio.gather(*futures)
        parent_cpu = cpu_pct(parent, sample([os.getpid()]))
        lag_task.cancel()
        crashed = sum(1 for before, now in zip(pids[1:], pool.pids, strict=True) if before != now)
    finally:
        await pool.stop(timeout_s=30.0)
        for proc, _uri in peers:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
    failed = [r for r in reports if (r.outcome.code, r.outcome.digit) != (200, "1")]
    if trace is not None:
        write_trace(trace, reports)
        print(f"trace: PSS read {t_pss:.2f} s; parent waited {(_sched_wait() - wait0):.2f} s for a CPU;"
              f" loop stalls > 0.5 s (start s, length s): {lag.stalls}", file=sys.stderr)
    for report in failed[:5]:
        print(f"  failed: {report.outcome.text} {report.timeline[-3:]}", file=sys.stderr)
    answered = [r.started_at + e.at_s for r in reports for e in r.timeline if e.kind == "answered"]
    placed = min(r.started_at for r in reports)
    setup = len(answered) / (max(answered) - placed) if answered else 0.0
    return Figures(calls=n, engines=engines, inband=inband, setup_per_s=setup, cpu_idle_pct=cpu_idle,
                   cpu_pct=cpu_busy, pss_idle_mib=pss_idle / 1024, pss_mib=pss_busy / 1024,
                   failed=len(failed), parent_cpu_pct=parent_cpu, crashed=crashed,
                   wall_s=time.perf_counter() - began)


async def bounded(run: Coroutine[Any, Any, Figures], timeout_s: float) -> Figures:
    """`run`, cancelled after `timeout_s` (asyncio.timeout: wait_for can swallow a cancellation, 3.11)."""
    async with asyncio.timeout(timeout_s):
        return await run


def _sched_wait() -> float:
    """Seconds this process's threads have waited, runnable, for a CPU (/proc/self/schedstat)."""
    return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9


class LoopLag:
    """Records when this process's event loop did not run for a while (blocked or starved)."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.stalls: list[tuple[float, float]] = []

    async def run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            if now - last > 0.6:
                self.stalls.append((round(last - self.t0, 1), round(now - last - 0.1, 1)))
            last = now


def write_trace(path: Path, reports: list[CallReport]) -> None:
    """One line per call: its events in seconds from the first call placed (SIP events at the engine's
    time, 'play'/'stop'/'hangup' when the dialer sent them), to see where a slow call lost its time."""
    first = min(r.started_at for r in reports)
    with path.open("w") as out:
        for r in reports:
            events = " ".join(f"{e.kind}@{r.started_at - first + e.at_s:.2f}" for e in r.timeline)
            out.write(f"{r.job.job_id} {r.job.uri} {r.outcome.code} {events}\n")


def print_table(rows: list[Figures]) -> None:
    print("| calls | engines | in-band | set up / s | CPU % idle pool | CPU % busy | CPU %/call "
          "| PSS MiB | PSS MiB/call (total) | PSS MiB/call (marginal) | parent CPU % | failed "
          "| engine crashes | run s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for f in rows:
        print(f"| {f.calls} | {f.engines} | {f.inband} | {f.setup_per_s:.0f} | {f.cpu_idle_pct:.0f} | "
              f"{f.cpu_pct:.0f} | {f.cpu_pct / f.calls:.2f} | {f.pss_mib:.0f} | {f.pss_mib / f.calls:.2f} | "
              f"{(f.pss_mib - f.pss_idle_mib) / f.calls:.2f} | {f.parent_cpu_pct:.0f} | {f.failed} | "
              f"{f.crashed} | {f.wall_s:.0f} |")


def raise_fd_limit() -> None:
    """SIPp and 100+ engines need file descriptors: take the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", default="50,100,250,500", help="comma list of concurrent call counts")
    parser.add_argument("--inband", type=float, default=0.2, help="share of calls with in-band detection")
    parser.add_argument("--trace", type=Path, help="write each call's event times to this file")
    parser.add_argument("--timeout", type=float, default=300.0, help="bound of each run, seconds")
    args = parser.parse_args(argv)
    if shutil.which("sipp") is None:
        print("sipp (Debian sip-tester) is not installed")
        return 1
    raise_fd_limit()
    sys.path.insert(0, str(ROOT / "samples" / "sipp"))
    import make_pcaps  # type: ignore[import-not-found]

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-calls-") as scratch:
        work = Path(scratch)
        make_pcaps.write_all(work / "pcap", SipSettings().telephone_event_pt)
        prompt = write_tone(work / "prompt.wav", 20.0, amplitude=6000)  # longer than the call
        for n in (int(x) for x in args.calls.split(",")):
            try:
                run = run_calls(n, args.inband, work, prompt, args.trace)
                figures = asyncio.run(bounded(run, args.timeout))
            except Exception as exc:  # one size failing must not hide the others
                print(f"{n} calls: the run failed: {exc!r}")
                continue
            rows.append(figures)
            print_table([figures])
    print(f"\n{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, prompt playback on every call, "
          f"{args.inband:.0%} of calls with in-band DTMF detection, hold {HOLD_MS / 1000:.0f} s")
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
