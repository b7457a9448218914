"""A slow SMSC: how many copies of each part it accepts, with the ESME's probe-and-wait (the shipped
behaviour) and with resend-on-timeout (the behaviour before, emulated by stalled_submit_s equal to the
response timeout).

    .venv/bin/python -m tests.bench.bench_slow_smsc [--parts 12] [--delay-ms 3000] [--timeout-s 1]

The test SMSC answers every submit_sm `--delay-ms` late and throttles every third; the ESME's response
timeout is `--timeout-s`. Prints, per mode: seconds until every part was answered (at most 120), the
submits the SMSC accepted (copies), resubmissions, parts the ESME gave up on, and enquire_links.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from collections import Counter
from pathlib import Path

from sms import gsm
from sms.smpp import OutgoingPart, SmppSettings
from tests.integration.sms.conftest import Recorder
from tests.integration.sms.peer import Smsc


async def run(smsc: Smsc, parts: int, timeout_s: float, stalled_s: float) -> tuple[float, int, int]:
    rec = Recorder()
    esme = rec.esme(SmppSettings(port=smsc.port, system_id="test", password="test", window=8, rate_per_s=0,
                                 response_timeout_s=timeout_s, stalled_submit_s=stalled_s,
                                 throttle_backoff_s=0.05, reconnect_min_s=0.1, reconnect_max_s=0.5))
    started = time.monotonic()
    await esme.start()
    for i in range(parts):
        await esme.submit(OutgoingPart(f"k{i}:0", "ACME", "+12505550199", f"key k{i}".encode(), gsm.GSM7, 0,
                                       registered_delivery=False))
    while len(rec.accepted) + len(rec.refused) < parts and time.monotonic() - started < 120:
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    await esme.stop(timeout_s=1.0)
    return elapsed, esme.stats.resubmitted, len(rec.refused)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=12)
    parser.add_argument("--delay-ms", type=int, default=3000)
    parser.add_argument("--timeout-s", type=float, default=1.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the ESME's warnings about late answers are expected here
    modes = (("probe and wait (shipped)", 300.0), ("resend on timeout (before)", args.timeout_s))
    for mode, stalled in modes:
        with tempfile.TemporaryDirectory() as tmp:
            smsc = Smsc(Path(tmp) / "accepted.jsonl")
            smsc.start()
            try:
                smsc.configure(resp_delay_ms=args.delay_ms, throttle_every=3)
                elapsed, resubmitted, refused = asyncio.run(run(smsc, args.parts, args.timeout_s, stalled))
                copies = Counter(entry["text"] for entry in smsc.recorded())
                probes = smsc.state()["stats"]["enquire_links"]
            finally:
                smsc.stop()
        print(f"{mode:28s} {elapsed:6.1f} s  SMSC accepted {sum(copies.values())} submits for {args.parts} "
              f"parts (most copies of one: {max(copies.values(), default=0)}), resubmitted {resubmitted}, "
              f"refused {refused}, enquire_links {probes}")


if __name__ == "__main__":
    main()
