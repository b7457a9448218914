"""The built-in SIP test phone: answers calls the way a script says, presses keys, records what it hears.

The demo and the tests call it to prove the whole call path end to end: it rings for
`ring_s`, answers (or rejects with `reject_code`), waits `wait_s`, presses each key of
`press` `press_gap_s` apart by RFC 4733, SIP INFO or in-band tones, records the caller's
audio to a WAV, and hangs up after `hangup_after_s` or waits for the caller to hang up.
It runs on `ivr.sip.SipUserAgent(accept_incoming=True)`; its timers run on a thread of its
own, so the user agent's callbacks never block. `python -m ivr.phone` (`main`) is one phone process of
`ivrgate phone --processes N`, which puts several behind one address (ivr.phone_front).
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import json
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ivr.events import SipEvent
from ivr.settings import SipSettings
from ivr.sip import SipUserAgent

log = logging.getLogger(__name__)

PressMode = Literal["rfc4733", "info", "inband"]


@dataclass
class PhoneScript:
    """What the phone does with every incoming call."""

    ring_s: float = 0.5
    """Ringing (180) before answering or rejecting."""
    answer: bool = True
    reject_code: int | None = None
    """Reject with this final code (e.g. 486 busy, 603 decline) instead of answering."""
    wait_s: float = 1.0
    """After the answer, before the first key press."""
    press: str = ""
    """Keys to press, in order; '91' presses 9, then 1."""
    press_gap_s: float = 1.0
    mode: PressMode = "rfc4733"
    record_to: Path | None = None
    """Directory for one WAV recording per call (what the caller sent)."""
    hangup_after_s: float | None = None
    """Hang up this long after the answer; None: wait for the caller to hang up."""


@dataclass
class PhoneCallRecord:
    """What happened on one call to the phone (times are time.monotonic())."""

    ref: str
    call_id: str = ""
    remote_uri: str = ""
    rang_at: float = 0.0
    answered_at: float | None = None
    ended_at: float | None = None
    digits_sent: str = ""
    recording: Path | None = None
    hung_up_by: Literal["phone", "caller", ""] = ""
    sip_code: int | None = None
    reason: str = ""
    telephone_event: bool | None = None
    events: list[SipEvent] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def summary(self) -> dict[str, object]:
        """The call as `ivrgate phone --json` prints it (one JSON object per finished call)."""
        held = (self.ended_at or 0.0) - self.answered_at if self.answered_at is not None else None
        return {
            "call_id": self.call_id, "from": self.remote_uri, "answered": self.answered_at is not None,
            "seconds": None if held is None else round(held, 3), "pressed": self.digits_sent,
            "hung_up_by": self.hung_up_by, "sip_code": self.sip_code, "reason": self.reason,
            "telephone_event": self.telephone_event,
            "recording": str(self.recording) if self.recording else None,
        }


class TestPhone:
    """A SIP phone for demos and tests, scripted by a `PhoneScript`."""

    __test__ = False  # not a pytest test class

    def __init__(self, settings: SipSettings, script: PhoneScript, port: int,
                 *, rtp_port: int | None = None) -> None:
        self.script = script
        self.calls: list[PhoneCallRecord] = []
        """Every call so far, in arrival order (read it after wait_for_calls)."""
        self.ua = SipUserAgent(settings, self._on_event, port=port, rtp_port=rtp_port,
                               accept_incoming=True, inband_dtmf="never")
        self._events: queue.SimpleQueue[SipEvent | None] = queue.SimpleQueue()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._by_ref: dict[str, PhoneCallRecord] = {}
        self._hanging_up: set[str] = set()
        self._changed = threading.Condition()
        self._worker: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The SIP port the phone listens on (after start)."""
        return self.ua.local_port

    def start(self) -> None:
        """Start listening; raises ivr.sip.SipError when the port cannot be bound."""
        self.ua.start()
        self._worker = threading.Thread(target=self._run, name="test-phone", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        """Hang up whatever is live and stop the phone."""
        self.ua.stop()
        if self._worker is not None:
            self._events.put(None)
            self._worker.join(5.0)
            self._worker = None

    def wait_for_calls(self, n: int, timeout: float) -> list[PhoneCallRecord]:
        """Wait until `n` calls have ended (or the timeout passes); return the records so far."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(c.ended for c in self.calls) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return list(self.calls)

    # ---- user agent thread: only hand over ----

    def _on_event(self, event: SipEvent) -> None:
        self._events.put(event)

    # ---- phone thread ----

    def _run(self) -> None:
        while True:
            timeout = None
            if self._timers:
                timeout = max(0.0, self._timers[0][0] - time.monotonic())
            try:
                event = self._events.get(timeout=timeout)
            except queue.Empty:
                event = None
                if not self._timers:
                    continue
            else:
                if event is None:
                    return
                self._handle(event)
            self._fire_due_timers()

    def _fire_due_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, action = heapq.heappop(self._timers)
            action()

    def _after(self, delay_s: float, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (time.monotonic() + delay_s, self._seq, action))

    def _handle(self, event: SipEvent) -> None:
        if event.kind == "incoming":
            self._on_incoming(event)
            return
        record = self._by_ref.get(event.ref)
        if record is None:
            return
        record.events.append(event)
        if event.kind == "answered":
            self._on_answered(record, event)
        elif event.kind == "media":
            record.telephone_event = event.telephone_event
        elif event.kind == "disconnected":
            self._on_ended(record, event)

    def _on_incoming(self, event: SipEvent) -> None:
        record = PhoneCallRecord(ref=event.ref, call_id=event.call_id, remote_uri=event.remote_uri,
                                 rang_at=event.t, events=[event])
        with self._changed:
            self.calls.append(record)
        self._by_ref[event.ref] = record
        log.info("phone: call %s from %s", event.ref, event.remote_uri)
        script = self.script
        if script.reject_code is not None or not script.answer:
            code = script.reject_code or 603
            self._after(script.ring_s, lambda: self._hangup(record, code))
        else:
            self._after(script.ring_s, lambda: self.ua.answer(record.ref, 200))

    def _on_answered(self, record: PhoneCallRecord, event: SipEvent) -> None:
        record.answered_at = event.t
        script = self.script
        if script.record_to is not None:
            script.record_to.mkdir(parents=True, exist_ok=True)
            record.recording = script.record_to / f"{record.call_id or record.ref}.wav"
            self.ua.record(record.ref, record.recording)
        for i, key in enumerate(script.press):
            self._after(script.wait_s + i * script.press_gap_s, functools.partial(self._press, record, key))
        if script.hangup_after_s is not None:
            self._after(script.hangup_after_s, lambda: self._hangup(record, None))

    def _press(self, record: PhoneCallRecord, key: str) -> None:
        if record.ended:
            return
        self.ua.send_dtmf(record.ref, key, self.script.mode)
        record.digits_sent += key
        log.info("phone: call %s pressed %s by %s", record.ref, key, self.script.mode)

    def _hangup(self, record: PhoneCallRecord, code: int | None) -> None:
        if not record.ended:
            self._hanging_up.add(record.ref)
            self.ua.hangup(record.ref, code)

    def _on_ended(self, record: PhoneCallRecord, event: SipEvent) -> None:
        with self._changed:
            record.ended_at = event.t
            record.sip_code, record.reason = event.sip_code, event.reason
            record.hung_up_by = "phone" if record.ref in self._hanging_up else "caller"
            self._changed.notify_all()
        log.info("phone: call %s ended (%s %s) by %s", record.ref, event.sip_code, event.reason,
                 record.hung_up_by)


# ---- one phone process of `ivrgate phone --processes N` (python -m ivr.phone)

LISTENING = "phone listening on"
"""The first line a phone prints on stdout: `phone listening on <address>:<port> ...`."""


def serve(phone: TestPhone, calls: int, done: threading.Event,
          emit: Callable[[PhoneCallRecord], None]) -> None:
    """Report every finished call through `emit` until `done` is set or `calls` (if not 0) ended."""
    reported: set[str] = set()
    while not done.is_set():
        for call in phone.wait_for_calls(len(reported) + 1, timeout=0.2):
            if call.ended and call.ref not in reported:
                emit(call)
                reported.add(call.ref)
        if calls and len(reported) >= calls:
            return


def script_from_json(obj: dict[str, object]) -> PhoneScript:
    """A PhoneScript from its fields as JSON (record_to as a path string)."""
    fields = {f.name for f in dataclasses.fields(PhoneScript)}
    unknown = sorted(set(obj) - fields)
    if unknown:
        raise ValueError(f"unknown phone script field(s): {', '.join(unknown)}")
    script = PhoneScript(**obj)  # type: ignore[arg-type]
    if script.record_to is not None:
        script.record_to = Path(script.record_to)
    return script


def script_to_json(script: PhoneScript) -> dict[str, object]:
    out = dataclasses.asdict(script)
    out["record_to"] = str(script.record_to) if script.record_to is not None else None
    return out


def _until_eof(done: threading.Event) -> None:
    """Set `done` when stdin closes: the parent died (or let go of us)."""
    sys.stdin.read()
    done.set()


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> int:
    """`python -m ivr.phone`: one lean phone process (no api import). Its stdin's first line is
    {"settings": SipSettings as JSON, "script": PhoneScript fields, "port": P, "rtp_port": R}; it prints
    the LISTENING line, then one JSON line per finished call, until SIGTERM or stdin EOF."""
    from ivr.engine import settings_from_json  # lean: no asyncio, no pjsua2

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(asctime)s phone %(levelname)s %(name)s: %(message)s")
    config = json.loads(sys.stdin.readline())
    settings = settings_from_json(json.dumps(config["settings"]))
    phone = TestPhone(settings, script_from_json(config["script"]), int(config["port"]),
                      rtp_port=config.get("rtp_port"))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides
    threading.Thread(target=_until_eof, args=(done,), daemon=True).start()
    phone.start()
    _say(f"{LISTENING} {settings.bind_address}:{phone.port}")
    try:
        serve(phone, 0, done, lambda call: _say(json.dumps(call.summary())))
    finally:
        phone.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
