"""`ivrgate phone`: run the built-in SIP test phone until Ctrl-C (or --calls N), logging each call.

    ivrgate phone --port 5070 --press 1 --mode rfc4733 --ring 0.5 --wait 2 --record /tmp/rec
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from ivr.phone import PhoneCallRecord, PhoneScript, TestPhone
from ivr.settings import SipSettings


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("phone", help="run the built-in SIP test phone",
                              description="Answer SIP calls, press keys, record what the caller plays.")
    p.add_argument("--port", type=int, default=5070, help="SIP port (0: any free port; default 5070)")
    p.add_argument("--rtp-port", type=int, default=None, help="first RTP port (default: settings)")
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


def _line(call: PhoneCallRecord, as_json: bool) -> str:
    held = (call.ended_at or 0.0) - call.answered_at if call.answered_at is not None else None
    fields = {
        "call_id": call.call_id, "from": call.remote_uri, "answered": call.answered_at is not None,
        "seconds": None if held is None else round(held, 3), "pressed": call.digits_sent,
        "hung_up_by": call.hung_up_by, "sip_code": call.sip_code, "reason": call.reason,
        "telephone_event": call.telephone_event,
        "recording": str(call.recording) if call.recording else None,
    }
    if as_json:
        return json.dumps(fields)
    return " ".join(f"{k}={v}" for k, v in fields.items() if v not in (None, ""))


def run(args: argparse.Namespace, settings: Any) -> int:
    sip = getattr(settings, "sip", None) or SipSettings()
    script = PhoneScript(ring_s=args.ring, answer=args.reject is None, reject_code=args.reject,
                         wait_s=args.wait, press=args.press, press_gap_s=args.gap, mode=args.mode,
                         record_to=args.record, hangup_after_s=args.hangup_after)
    phone = TestPhone(sip, script, args.port, rtp_port=args.rtp_port)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    phone.start()
    print(f"phone listening on {sip.bind_address}:{phone.port} ({args.mode}, press {args.press!r})",
          flush=True)
    reported: set[str] = set()
    try:
        while not done.is_set():
            for call in phone.wait_for_calls(len(reported) + 1, timeout=0.2):
                if call.ended and call.ref not in reported:
                    print(_line(call, args.json), flush=True)
                    reported.add(call.ref)
            if args.calls and len(reported) >= args.calls:
                break
    except KeyboardInterrupt:
        pass
    finally:
        phone.stop()
    sys.stdout.flush()
    return 0
