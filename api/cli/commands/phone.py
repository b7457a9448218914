"""`ivrgate phone`: run the built-in SIP test phone until Ctrl-C (or --calls N), logging each call.

    ivrgate phone --port 5070 --press 1 --mode rfc4733 --ring 0.5 --wait 2 --record /tmp/rec

One phone process carries at most 4 calls (pjsua2 wheels are built with PJSUA_MAX_CALLS = 4), so by
default the phone runs `--processes` child phones on ports of their own behind one front on `--port`
(ivr.phone_front: a stateless SIP proxy that hands each INVITE to the child with the fewest calls and
refuses with 486, logged, only when every child is full). `--processes 1` runs one phone on the port
itself.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from ivr.engine import settings_to_json
from ivr.phone import LISTENING, PhoneScript, TestPhone, script_to_json, serve
from ivr.phone_front import PhoneFront
from ivr.settings import SipSettings, rtp_range
from ivr.sip import MAX_CALLS

log = logging.getLogger(__name__)

CHILD_START_TIMEOUT_S = 60.0


def default_processes(sip: SipSettings) -> int:
    """Enough phone processes for every call the gateway's engine pool can place at once, at least 4
    (16 calls): the gateway may run with more engines than the phone's own settings say."""
    engines = sip.processes * max(1, min(sip.calls_per_process, MAX_CALLS))
    return max(4, math.ceil(engines / MAX_CALLS))


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("phone", help="run the built-in SIP test phone",
                              description="Answer SIP calls, press keys, record what the caller plays.")
    p.add_argument("--port", type=int, default=5070, help="SIP port (0: any free port; default 5070)")
    p.add_argument("--rtp-port", type=int, default=None, help="first RTP port (default: settings)")
    p.add_argument("--processes", type=int, default=None,
                   help="phone processes behind the port, 4 calls each (default: enough for the engine "
                   "pool of the settings, at least 4; 1: a single phone on the port itself)")
    p.add_argument("--press", default="", help="keys to press after answering, e.g. 1 or 91")
    p.add_argument("--mode", choices=("rfc4733", "info", "inband"), default="rfc4733")
    p.add_argument("--ring", type=float, default=0.5, help="seconds of ringing before answering")
    p.add_argument("--wait", type=float, default=1.0, help="seconds after answering before the first key")
    p.add_argument("--gap", type=float, default=1.0, help="seconds between keys")
    p.add_argument("--record", type=Path, default=None, metavar="DIR",
                   help="record each call to DIR/<call-id>.wav")
    p.add_argument("--reject", type=int, default=None, metavar="CODE", help="reject calls, e.g. 486 or 603")
    p.add_argument("--hangup-after", type=float, default=None, help="hang up this long after answering")
    p.add_argument("--calls", type=int, default=0, help="exit after this many calls (0: run until Ctrl-C)")
    p.add_argument("--json", action="store_true", help="print one JSON line per finished call")
    p.set_defaults(func=run)


def _line(fields: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(fields)
    return " ".join(f"{k}={v}" for k, v in fields.items() if v not in (None, ""))


def _script(args: argparse.Namespace) -> PhoneScript:
    return PhoneScript(ring_s=args.ring, answer=args.reject is None, reject_code=args.reject,
                       wait_s=args.wait, press=args.press, press_gap_s=args.gap, mode=args.mode,
                       record_to=args.record, hangup_after_s=args.hangup_after)


def run(args: argparse.Namespace, settings: Any) -> int:
    sip = getattr(settings, "sip", None) or SipSettings()
    processes = default_processes(sip) if args.processes is None else args.processes
    if processes < 1:
        print("phone: --processes must be at least 1", file=sys.stderr)
        return 2
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    if processes == 1:
        return _run_one(args, sip, done)
    return _run_pool(args, sip, processes, done)


def _run_one(args: argparse.Namespace, sip: SipSettings, done: threading.Event) -> int:
    phone = TestPhone(sip, _script(args), args.port, rtp_port=args.rtp_port)
    phone.start()
    print(f"{LISTENING} {sip.bind_address}:{phone.port} ({args.mode}, press {args.press!r})", flush=True)
    try:
        serve(phone, args.calls, done, lambda call: print(_line(call.summary(), args.json), flush=True))
    except KeyboardInterrupt:
        pass
    finally:
        phone.stop()
    sys.stdout.flush()
    return 0


class _Child:
    """One phone process (`python -m ivr.phone`, lean: no api import); its JSON lines are handed to
    `on_call` by a reader thread."""

    def __init__(self, config: dict[str, Any], on_call: Any) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "ivr.phone"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdin is not None
        # settings through stdin, not argv: they may hold the trunk password
        self.process.stdin.write(json.dumps(config) + "\n")
        self.process.stdin.flush()
        self.port = 0
        self.ready = threading.Event()
        self._on_call = on_call
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            if line.startswith(LISTENING) and not self.ready.is_set():
                self.port = int(line.split()[3].rsplit(":", 1)[1])
                self.ready.set()
            elif line.startswith("{"):
                self._on_call(json.loads(line))
        self.ready.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM to this child's PID: it hangs up and exits
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)


def _run_pool(args: argparse.Namespace, sip: SipSettings, processes: int, done: threading.Event) -> int:
    first_rtp = sip.rtp_port if args.rtp_port is None else args.rtp_port
    lock = threading.Lock()
    finished: list[dict[str, Any]] = []
    front: PhoneFront | None = None

    def on_call(fields: dict[str, Any]) -> None:
        with lock:
            finished.append(fields)
            print(_line(fields, args.json), flush=True)
        if front is not None:
            front.ended(str(fields.get("call_id") or ""))
        if args.calls and len(finished) >= args.calls:
            done.set()

    settings = json.loads(settings_to_json(sip))
    script = script_to_json(_script(args))
    children = [_Child({"settings": settings, "script": script, "port": 0,
                        "rtp_port": rtp_range(first_rtp, sip.rtp_ports_per_process, i)[0]}, on_call)
                for i in range(processes)]
    try:
        deadline = time.monotonic() + CHILD_START_TIMEOUT_S
        for child in children:
            if not child.ready.wait(max(0.0, deadline - time.monotonic())) or not child.port:
                print("phone: a phone process did not start", file=sys.stderr)
                return 1
        front = PhoneFront((sip.bind_address, args.port),
                           [(sip.bind_address, c.port) for c in children], capacity=MAX_CALLS,
                           clock=time.monotonic)
        front.start()
        print(f"{LISTENING} {sip.bind_address}:{front.address[1]} ({args.mode}, press "
              f"{args.press!r}; {processes} processes, {processes * MAX_CALLS} calls)", flush=True)
        try:
            while not done.wait(0.2):
                if any(c.process.poll() is not None for c in children):
                    log.error("phone: a phone process exited; stopping")
                    return 1
        except KeyboardInterrupt:
            pass
    finally:
        if front is not None:
            front.stop()
        for child in children:
            child.stop()
    sys.stdout.flush()
    return 0
