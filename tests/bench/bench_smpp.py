"""submit_sm per second through sms.smpp.Esme to the node SMSC (tests/peers/smsc.js) on 127.0.0.1.

    .venv/bin/python -m tests.bench.bench_smpp [--parts 30000] [--window 512]

Runs, each against a fresh SMSC with its records off:
  no-dlr      registered_delivery 0: from the first submit() to the last submit_sm_resp
  dlr         registered_delivery 1: until every part is accepted and its receipt handled
  2-sessions  two ESMEs side by side, no DLR: the SMSC's ceiling, to tell whether node is the bottleneck
Prints parts/s and the CPU seconds of this process and of the node process for each.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path

from sms import gsm
from sms.smpp import Esme, OutgoingPart, Receipt, SmppSettings
from tests.integration.sms.peer import Smsc


class Counter:
    def __init__(self) -> None:
        self.accepted = 0
        self.refused = 0
        self.receipts = 0
        self.done = asyncio.Event()
        self.target = 0
        self.want_receipts = False

    def _check(self) -> None:
        finished = self.accepted + self.refused >= self.target
        if finished and (not self.want_receipts or self.receipts >= self.target):
            self.done.set()

    async def on_accepted(self, key: str, smsc_id: str) -> None:
        self.accepted += 1
        self._check()

    async def on_refused(self, key: str, status: int, text: str) -> None:
        self.refused += 1
        self._check()

    async def on_receipt(self, receipt: Receipt) -> None:
        self.receipts += 1
        self._check()

    async def on_incoming(self, incoming: object) -> None:
        return None


def node_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0


async def run(peer: Smsc, parts: int, window: int, dlr: bool, sessions: int) -> tuple[float, int, int]:
    counters = [Counter() for _ in range(sessions)]
    settings = SmppSettings(port=peer.port, system_id="test", password="test", window=window, rate_per_s=0.0,
                            response_timeout_s=30.0)
    esmes = [Esme(settings, on_accepted=c.on_accepted, on_refused=c.on_refused, on_receipt=c.on_receipt,
                  on_incoming=c.on_incoming) for c in counters]
    encoded = gsm.encode("Benchmark message, 50 characters of GSM-7 text...", reference=0)
    for esme in esmes:
        await esme.start()
    while not all(e.connected for e in esmes):
        await asyncio.sleep(0.01)
    per_session = parts // sessions

    async def feed(esme: Esme, counter: Counter, index: int) -> None:
        counter.target, counter.want_receipts = per_session, dlr
        for i in range(per_session):
            await esme.submit(OutgoingPart(f"{index}-{i}:0", "12505550100", "12505550199", encoded.parts[0],
                                           encoded.data_coding, encoded.esm_class, dlr))
        await counter.done.wait()

    start = time.perf_counter()
    await asyncio.gather(*(feed(e, c, i) for i, (e, c) in enumerate(zip(esmes, counters, strict=True))))
    elapsed = time.perf_counter() - start
    for esme in esmes:
        await esme.stop()
    return elapsed, sum(c.accepted for c in counters), sum(c.receipts for c in counters)


def measure(name: str, parts: int, window: int, dlr: bool, sessions: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        peer = Smsc(Path(tmp) / "record.jsonl", nodelay=True)
        peer.start()
        try:
            peer.configure(record=False)
            assert peer.process is not None
            node_before = node_cpu_s(peer.process.pid)
            own_before = resource.getrusage(resource.RUSAGE_SELF)
            elapsed, accepted, receipts = asyncio.run(run(peer, parts, window, dlr, sessions))
            own_after = resource.getrusage(resource.RUSAGE_SELF)
            node_cpu = node_cpu_s(peer.process.pid) - node_before
        finally:
            peer.stop()
    own_cpu = (own_after.ru_utime + own_after.ru_stime) - (own_before.ru_utime + own_before.ru_stime)
    print(f"{name:<11} {accepted:>7} parts {receipts:>7} receipts in {elapsed:6.2f} s = "
          f"{accepted / elapsed:8.0f} parts/s   python cpu {own_cpu:5.2f} s, node cpu {node_cpu:5.2f} s")


# --- end to end (engineer S2): the legacy `matrix` HTTP call -> store -> SMS sender -> SMSC ------------


def bench_end_to_end(messages: int = 2000, per_call: int = 100) -> None:
    """Messages per second from the `matrix` call to the SMSC (tests/bench/bench_sms_gateway.py)."""
    from tests.bench.bench_sms_gateway import bench_end_to_end as run

    f = run(messages, per_call)
    print(f"end-to-end: {messages} SMS via matrix ({per_call} a call): HTTP {f['http_submit_per_s']:.0f}/s, "
          f"at the SMSC {f['to_smsc_per_s']:.0f}/s, Delivered {f['to_delivered_per_s']:.0f}/s")


# -------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--parts", type=int, default=30000)
    parser.add_argument("--window", type=int, default=512)
    args = parser.parse_args(argv)
    measure("no-dlr", args.parts, args.window, dlr=False, sessions=1)
    measure("dlr", args.parts, args.window, dlr=True, sessions=1)
    measure("2-sessions", args.parts, args.window, dlr=False, sessions=2)
    bench_end_to_end()


if __name__ == "__main__":
    main()
