"""The pjsua2 adapter: one SIP user agent (one pjsua2 Endpoint) per process, calls in, events out.

Threading (docs/DESIGN.md, "The SIP engine"): one owner thread creates the Endpoint and polls
`libHandleEvents`; pjsua runs no worker threads of its own (uaConfig.threadCnt = 0,
medConfig.threadCnt = 0, hasIoqueue = False), so every signalling callback and every digit
arrives on the owner thread. Public methods only put commands on a queue the owner thread
drains between polls: no other thread ever calls pjlib (an unregistered thread aborts the
process). Media-port callbacks run on pjmedia's clock thread and only hand frames over.

`on_event` is called on the owner thread, one `SipEvent` at a time, and must return quickly
without blocking and without calling back into the SIP user agent synchronously (queueing a
command through the public methods is fine: they only enqueue).

pjsua2-python is built with PJSUA_MAX_CALLS = 4: `capacity` is at most 4; a call beyond it is
refused with an 'error' event. Digits from RFC 4733, SIP INFO and in-band tones pass through
one `ivr.digits.DigitMerger`, so a key press is reported once however many ways it arrives.

Calls never hang: a call ringing longer than `ring_timeout_s` is cancelled ('ring timeout'); an
answered call that receives no RTP for `rtp_timeout_s` is hung up ('no RTP', e.g. the far end died);
a request without any response ends after pjsip's 32 s (408). Every call ends with one
'disconnected' event carrying a SIP code or a reason.

Beyond the contract: `local_port` (the SIP port actually bound, useful with port=0),
`stop_recording(ref)`, `alive`, and `registration` (the last REGISTER outcome, also reported as a
'registration' event with ref `REGISTRATION_REF`).

The media ports and the pjsip log bridge live in `ivr.sip_media`; the event types in `ivr.events`
(re-exported here), so that processes that never place a call do not import pjsua2.

Size: the pjsua2 adapter is bound to the one thread that owns the Endpoint; the account, the Call subclass
and its callbacks, and the command queue into that thread share its state and its rules (release on
DISCONNECTED, never block in a callback), so they are kept in one module; the media half is ivr.sip_media.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pjsua2 as pj

from coded import statuses
from ivr.digits import DigitMerger, dtmf_from_info
from ivr.errors import IvrError
from ivr.events import NOT_REGISTERED, DigitSource, DtmfMethod, EventKind, SipEvent
from ivr.sdp import offer_telephone_event_pt
from ivr.settings import SipSettings
from ivr.sip_media import DTMF, CallMedia, MediaQueue, PortReaper, audio_state
from ivr.sip_setup import account_config, call_param, error_text, start_endpoint

__all__ = [
    "MAX_CALLS",
    "REGISTRATION_REF",
    "DigitSource",
    "DtmfMethod",
    "EventKind",
    "SipError",
    "SipEvent",
    "SipUserAgent",
    "error_text",
]

log = logging.getLogger(__name__)

MAX_CALLS = 4
"""PJSUA_MAX_CALLS of the pjsua2-python wheel."""
POLL_MS = 10
"""How long one libHandleEvents call may wait while calls are live; commands wait at most this long."""
IDLE_WAIT_S = 0.1
"""Without calls, the owner thread sleeps on the command queue this long between (non-blocking)
libHandleEvents calls: a command wakes it at once; SIP traffic (an incoming INVITE, a REGISTER
answer, pjsip timers) waits at most this long. 100 wake-ups a second cost ~0.9 % of a core per idle
engine; 10 a second cost a tenth of that."""
SHUTDOWN_REAP_S = 2.0
"""At shutdown, how long to wait for the conference bridge to release the last media ports."""
PJ_ETOOMANY = 70010
SLOT_RETRY_S = 2.0
"""How long a call waits for pjsua to free the slot of a call that has just ended."""
REGISTRATION_REF = "registration"
"""The ref of 'registration' events (they belong to no call)."""
RTP_CHECK_S = 1.0
"""How often the owner thread looks at each call's RTP counters."""


class SipError(IvrError):
    """The SIP user agent could not start or was used wrongly."""

    code = statuses.CALL_FAILED
    status_text = "Call failed"


@dataclass
class _Leg:
    """What the owner thread keeps per live call."""

    ref: str
    call: _Call
    outgoing: bool
    started: float
    call_id: str = ""
    answered: bool = False
    confirmed: tuple[int, str] | None = None
    """(SIP code, remote URI) once the dialog is confirmed: 'answered' waits for `negotiated` too."""
    negotiated: bool = False
    """An offer/answer succeeded (pjsua reported the call's media at least once)."""
    media: CallMedia | None = None
    telephone_event: bool | None = None
    event_pt: int = 0
    """telephone-event type for this call's later offers (the answer's, when it differed from ours)."""
    pending_reinvite: bool = False
    """A re-INVITE offering `event_pt` waits for the answer."""
    rfc4733_heard: bool = False
    """An RFC 4733 digit arrived on this call (ends the in-band fallback)."""
    held: bool = False
    """The negotiated media does not bring us RTP (the far end holds the call, a=inactive, or we
    only send): the RTP timeout is suspended meanwhile."""
    rtp_packets: int = 0
    rtp_seen: float = 0.0
    """When `rtp_packets` last grew (time.monotonic())."""
    timed_out: str = ""
    """Why ivrgate itself ended the call ('ring timeout', 'no RTP'), reported on 'disconnected'."""
    pending: list[Callable[[], None]] = field(default_factory=list)
    merger: DigitMerger = field(default_factory=DigitMerger)


class _Call(pj.Call):  # type: ignore[misc]
    def __init__(self, ua: SipUserAgent, acc: pj.Account, call_id: int = -1) -> None:
        super().__init__(acc, call_id)
        self.ua = ua

    def onCallState(self, prm: Any) -> None:
        self.ua._on_call_state(self)

    def onCallMediaState(self, prm: Any) -> None:
        self.ua._on_media_state(self)

    def onCallSdpCreated(self, prm: Any) -> None:
        if not str(prm.remSdp.wholeSdp):  # our offer (an answer keeps the offer's payload types)
            leg = self.ua._leg_of(self)
            pt = (leg.event_pt if leg is not None else 0) or self.ua.settings.telephone_event_pt
            sdp = str(prm.sdp.wholeSdp)
            edited = offer_telephone_event_pt(sdp, pt)
            if edited != sdp:
                prm.sdp.wholeSdp = edited

    def onCallTsxState(self, prm: Any) -> None:
        self.ua._on_tsx(self, prm)

    def onDtmfDigit(self, prm: Any) -> None:
        info = prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO
        self.ua._on_digit(self, str(prm.digit), "info" if info else "rfc4733")


class _Account(pj.Account):  # type: ignore[misc]
    def __init__(self, ua: SipUserAgent) -> None:
        super().__init__()
        self.ua = ua

    def onIncomingCall(self, prm: Any) -> None:
        self.ua._on_incoming(self, prm)

    def onRegState(self, prm: Any) -> None:
        self.ua._on_reg_state(int(prm.code), str(prm.reason), int(prm.expiration))


class SipUserAgent:
    """One pjsua2 Endpoint driven by one owner thread; see the module docstring for threading.

    pjsua2 allows one Endpoint per process, so only one SipUserAgent may run at a time in a
    process (start() raises SipError otherwise); run more in child processes (ivr.pool).
    """

    _running_lock = threading.Lock()
    _running: SipUserAgent | None = None

    def __init__(
        self,
        settings: SipSettings,
        on_event: Callable[[SipEvent], None],
        *,
        port: int | None = None,
        rtp_port: int | None = None,
        accept_incoming: bool = False,
        inband_dtmf: str | None = None,
        rtp_timeout_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.on_event = on_event
        self.port = settings.port if port is None else port
        self.rtp_port = settings.rtp_port if rtp_port is None else rtp_port
        self.accept_incoming = accept_incoming
        self.inband_dtmf = inband_dtmf or settings.inband_dtmf
        if self.inband_dtmf not in ("auto", "always", "never"):
            raise SipError(f"inband_dtmf must be auto, always or never, not {self.inband_dtmf!r}")
        self.rtp_timeout_s = float(rtp_timeout_s if rtp_timeout_s is not None
                                   else settings.rtp_timeout_s)
        """Hang up an answered call after this long without RTP; 0 disables the check."""
        self.registration: tuple[int, str] | None = None
        """(SIP code, reason) of the last REGISTER outcome; None before any (or without registrar)."""
        self.capacity: int = max(1, min(settings.calls_per_process, MAX_CALLS))
        """Most calls this user agent carries at once."""
        self.local_port: int = 0
        """The SIP port bound, known after start()."""
        self._active = 0
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._media_q: MediaQueue = queue.SimpleQueue()
        self._legs: dict[str, _Leg] = {}
        self._released: list[Any] = []
        self._reaper = PortReaper()
        self._later: list[tuple[float, Callable[[], None]]] = []
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._stopping = False
        self._stop_deadline = 0.0
        self._incoming_n = 0
        self._ep: Any = None
        self._acc: _Account | None = None
        self._next_rtp_check = 0.0
        self._held: list[tuple[str, str, float, Callable[[], None]]] = []
        """Calls waiting for the first registration: (ref, uri, deadline, the command that places it)."""

    # ---- public surface (any thread) -------------------------------------------------------

    @property
    def active(self) -> int:
        """Live calls (a thread-safe read of a counter the owner thread maintains)."""
        return self._active

    @property
    def alive(self) -> bool:
        """True while the owner thread runs: the user agent can still take commands."""
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    def preload_dtmf(self) -> None:
        """Import audio.dtmf (numpy) in a background thread now unless `inband_dtmf` is 'never', so
        that the first in-band call does not wait for it (0.2-0.3 s; ~17 MiB). The engine calls this
        right after 'ready'; without it the import starts on the first in-band need."""
        if self.inband_dtmf != "never":
            DTMF.start()

    def start(self) -> None:
        """Start the owner thread, the Endpoint, the transport and the account; raise SipError if not."""
        if self._thread is not None:
            raise SipError("already started")
        with SipUserAgent._running_lock:
            if SipUserAgent._running is not None:
                raise SipError("another SipUserAgent runs in this process (one pjsua2 Endpoint per process)")
            SipUserAgent._running = self
        self._thread = threading.Thread(target=self._run, name=f"sip-ua-{self.port}", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            self._thread.join()
            self._release_process_slot()
            why = error_text(self._start_error)
            raise SipError(f"SIP user agent did not start: {why}") from self._start_error

    def stop(self, timeout_s: float = 10.0) -> None:
        """Hang up every call, wait for them to end, destroy the Endpoint and join the thread."""
        thread = self._thread
        if thread is None:
            return
        if thread.is_alive():
            self._commands.put(lambda: self._begin_stop(timeout_s))
            thread.join(timeout_s + 5.0)
        if thread.is_alive():
            log.error("SIP owner thread did not end within %.1f s", timeout_s + 5.0)
        else:
            self._release_process_slot()

    def _release_process_slot(self) -> None:
        with SipUserAgent._running_lock:
            if SipUserAgent._running is self:
                SipUserAgent._running = None

    def call(
        self, ref: str, uri: str, *, caller_id: str = "", display_name: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Place a call to `uri`; its events carry `ref`."""
        hdrs = dict(headers or {})
        self._commands.put(lambda: self._do_call(ref, uri, caller_id, display_name, hdrs))

    def answer(self, ref: str, code: int = 200) -> None:
        """Answer an incoming call (or send a provisional response such as 180/183)."""
        self._commands.put(lambda: self._with_leg(ref, lambda leg: self._do_answer(leg, code)))

    def hangup(self, ref: str, code: int | None = None) -> None:
        """End a call: BYE when answered, CANCEL when ringing out, `code` (e.g. 486) when ringing in."""
        self._commands.put(lambda: self._with_leg(ref, lambda leg: self._do_hangup(leg, code)))

    def play(self, ref: str, wav: Path, *, loop: bool = False) -> None:
        """Play a WAV file into the call; 'playback_done' follows its end (never when looping)."""
        self._commands.put(lambda: self._with_media(ref, lambda _, media: media.play(wav, loop)))

    def stop_playback(self, ref: str) -> None:
        """Stop the current playback without a 'playback_done' event."""
        self._commands.put(lambda: self._with_leg(ref, self._drop_player))

    def record(self, ref: str, path: Path) -> None:
        """Record what the far end sends to a WAV file until the call ends ('recording_done')."""
        self._commands.put(lambda: self._with_media(
            ref, lambda leg, media: self._do_record(leg, media, path)))

    def stop_recording(self, ref: str) -> None:
        """Close the recording now ('recording_done')."""
        self._commands.put(lambda: self._with_leg(ref, self._close_recorder))

    def send_dtmf(self, ref: str, digits: str, method: DtmfMethod) -> None:
        """Send digits by RFC 4733 events, SIP INFO (application/dtmf-relay) or in-band tones."""
        self._commands.put(lambda: self._with_media(
            ref, lambda leg, media: self._do_dtmf(leg, media, digits, method)))

    # ---- owner thread: life cycle ----------------------------------------------------------

    def _run(self) -> None:
        try:
            self._create_endpoint()
        except Exception as exc:
            log.error("SIP user agent start failed: %s", error_text(exc))
            self._start_error = exc
            self._destroy_endpoint()
            self._started.set()
            return
        self._started.set()
        try:
            while not (self._stopping and (not self._legs or time.monotonic() > self._stop_deadline)):
                self._drain_commands()
                self._run_due()
                busy = self._busy()
                self._ep.libHandleEvents(POLL_MS if busy else 0)
                self._drain_media()
                self._check_ring_timeouts()
                self._check_held()
                self._check_rtp()
                self._released.clear()
                self._reaper.collect()
                if not busy and not self._busy():
                    self._wait_for_command(IDLE_WAIT_S)
        except Exception:
            log.exception("SIP owner loop failed")
        finally:
            self._shutdown()

    def _create_endpoint(self) -> None:
        s = self.settings
        started = start_endpoint(s, port=self.port, max_calls=self.capacity)
        self._ep, self._writer, self.local_port = started.endpoint, started.writer, started.local_port
        self._acc = _Account(self)
        self._acc.create(account_config(s, transport_id=started.transport_id, local_port=self.local_port,
                                        rtp_port=self.rtp_port))
        log.info("SIP user agent on %s:%d/%s", s.bind_address, self.local_port, s.transport)

    def _begin_stop(self, timeout_s: float) -> None:
        self._stopping = True
        self._release_held("stopping")
        self._stop_deadline = time.monotonic() + timeout_s
        for leg in list(self._legs.values()):
            self._do_hangup(leg, None)

    def _shutdown(self) -> None:
        for leg in list(self._legs.values()):
            self._detach_media(leg)
        self._legs.clear()
        self._active = 0
        self._released.clear()
        self._reap_all()
        self._acc = None
        self._destroy_endpoint()
        log.info("SIP user agent on port %d stopped", self.local_port)

    def _reap_all(self) -> None:
        """Before libDestroy: poll until the bridge has released every retired media port (a few
        clock ticks); ports it still holds after SHUTDOWN_REAP_S are leaked, never freed under it."""
        deadline = time.monotonic() + SHUTDOWN_REAP_S
        while self._ep is not None and self._reaper.collect() and time.monotonic() < deadline:
            self._ep.libHandleEvents(POLL_MS)
        self._reaper.abandon()

    def _busy(self) -> bool:
        """Calls, timed work or a stop in progress: poll pjsua every POLL_MS rather than idling."""
        return bool(self._legs or self._later or self._held or self._stopping)

    def _destroy_endpoint(self) -> None:
        if self._ep is not None:
            try:
                self._ep.libDestroy()
            except pj.Error as exc:
                log.warning("libDestroy: %s", exc.info())
            self._ep = None

    def _run_due(self) -> None:
        if not self._later:
            return
        now = time.monotonic()
        due = [c for t, c in self._later if t <= now]
        self._later = [(t, c) for t, c in self._later if t > now]
        for command in due:
            self._commands.put(command)
        if due:
            self._drain_commands()

    def _drain_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            self._run_command(command)

    def _wait_for_command(self, timeout_s: float) -> None:
        """Idle: sleep until a command arrives (run it and the rest at once) or `timeout_s` passes."""
        try:
            command = self._commands.get(timeout=timeout_s)
        except queue.Empty:
            return
        self._run_command(command)
        self._drain_commands()

    @staticmethod
    def _run_command(command: Callable[[], None]) -> None:
        try:
            command()
        except pj.Error as exc:
            log.warning("SIP command failed: %s", error_text(exc))
        except Exception:
            log.exception("SIP command failed")

    def _emit(self, ref: str, kind: EventKind, **fields: Any) -> None:
        try:
            self.on_event(SipEvent(ref=ref, kind=kind, t=time.monotonic(), **fields))
        except Exception:
            log.exception("on_event raised for %s %s", ref, kind)

    # ---- owner thread: commands ------------------------------------------------------------

    def _with_leg(self, ref: str, action: Callable[[_Leg], None]) -> None:
        leg = self._legs.get(ref)
        if leg is None:
            log.warning("command for unknown call %r dropped", ref)
            return
        action(leg)

    def _with_media(self, ref: str, action: Callable[[_Leg, CallMedia], None]) -> None:
        """Run `action` on the call's media now, or once the media is up."""
        def run(leg: _Leg) -> None:
            if leg.media is None:
                leg.pending.append(lambda: self._with_media(ref, action))
            else:
                action(leg, leg.media)
        self._with_leg(ref, run)

    def _do_call(self, ref: str, uri: str, caller_id: str, display: str, headers: dict[str, str],
                 retry_until: float | None = None) -> None:
        if retry_until is None:
            retry_until = time.monotonic() + SLOT_RETRY_S
        if self._stopping or ref in self._legs or self._active >= self.capacity:
            why = ("stopping" if self._stopping else "duplicate ref" if ref in self._legs
                   else "no free call slot")
            self._emit(ref, "error", reason=why, remote_uri=uri)
            return
        if not self._may_call(ref, uri, lambda: self._do_call(ref, uri, caller_id, display, headers)):
            return
        assert self._acc is not None
        call = _Call(self, self._acc)
        leg = _Leg(ref=ref, call=call, outgoing=True, started=time.monotonic())
        self._legs[ref] = leg
        self._active = len(self._legs)
        try:
            call.makeCall(uri, call_param(self.settings, caller_id, display, headers))
        except pj.Error as exc:
            del self._legs[ref]
            self._active = len(self._legs)
            self._released.append(call)
            if exc.status == PJ_ETOOMANY and retry_until > time.monotonic():
                # pjsua frees a slot a few polls after DISCONNECTED: try again shortly
                self._later.append((time.monotonic() + 0.02, lambda: self._do_call(
                    ref, uri, caller_id, display, headers, retry_until)))
                return
            self._emit(ref, "error", reason=error_text(exc), remote_uri=uri)
            return
        leg.call_id = str(call.getInfo().callIdString)
        self._emit(ref, "calling", call_id=leg.call_id, remote_uri=uri)

    def _do_answer(self, leg: _Leg, code: int) -> None:
        prm = pj.CallOpParam()
        prm.statusCode = code
        leg.call.answer(prm)

    def _do_hangup(self, leg: _Leg, code: int | None) -> None:
        prm = pj.CallOpParam()
        if code is not None:
            prm.statusCode = code
        leg.call.hangup(prm)

    def _drop_player(self, leg: _Leg) -> None:
        if leg.media is not None:
            leg.media.drop_player()

    def _do_record(self, leg: _Leg, media: CallMedia, path: Path) -> None:
        self._recording_done(leg, media.record(path))

    def _close_recorder(self, leg: _Leg) -> None:
        if leg.media is not None:
            self._recording_done(leg, leg.media.close_recorder())

    def _recording_done(self, leg: _Leg, path: Path | None) -> None:
        if path is not None:
            self._emit(leg.ref, "recording_done", call_id=leg.call_id, reason=str(path))

    def _do_dtmf(self, leg: _Leg, media: CallMedia, digits: str, method: DtmfMethod) -> None:
        if method == "inband":
            media.send_tones(digits)
            return
        prm = pj.CallSendDtmfParam()
        prm.digits = digits
        prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO if method == "info" else pj.PJSUA_DTMF_METHOD_RFC2833
        leg.call.sendDtmf(prm)

    # ---- owner thread: callbacks -----------------------------------------------------------

    def _leg_of(self, call: _Call) -> _Leg | None:
        return next((leg for leg in self._legs.values() if leg.call is call), None)

    def _on_incoming(self, acc: _Account, prm: Any) -> None:
        call = _Call(self, acc, prm.callId)
        info = call.getInfo()
        if not self.accept_incoming or self._stopping or self._active >= self.capacity:
            op = pj.CallOpParam()
            op.statusCode = 486 if self.accept_incoming else 603
            why = ("no free call slot" if self.accept_incoming and not self._stopping
                   else "stopping" if self._stopping else "incoming calls not accepted")
            log.warning("refused incoming call %s from %s with %d: %s (%d of %d calls)",
                        info.callIdString, info.remoteUri, op.statusCode, why, self._active, self.capacity)
            call.hangup(op)
            self._released.append(call)
            return
        self._incoming_n += 1
        ref = f"in-{self._incoming_n}"
        leg = _Leg(ref=ref, call=call, outgoing=False, started=time.monotonic(),
                   call_id=str(info.callIdString))
        self._legs[ref] = leg
        self._active = len(self._legs)
        self._emit(ref, "incoming", call_id=leg.call_id, remote_uri=str(info.remoteUri))
        self._do_answer(leg, 180)

    def _on_tsx(self, call: _Call, prm: Any) -> None:
        """Digits sent as SIP INFO application/dtmf (pjsua itself only decodes dtmf-relay; it still
        answers these INFOs 500, which pjsua2 gives no way to change)."""
        event = prm.e
        if event.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        state = event.body.tsxState
        tsx = state.tsx
        if (tsx.role != pj.PJSIP_ROLE_UAS or tsx.state != pj.PJSIP_TSX_STATE_TRYING
                or state.type != pj.PJSIP_EVENT_RX_MSG):
            return
        digit = dtmf_from_info(str(state.src.rdata.wholeMsg))
        if digit is not None:
            self._on_digit(call, digit, "info")

    def _on_call_state(self, call: _Call) -> None:
        leg = self._leg_of(call)
        if leg is None:
            return
        info = call.getInfo()
        state, code = info.state, int(info.lastStatusCode)
        if state == pj.PJSIP_INV_STATE_EARLY and leg.outgoing:
            self._emit(leg.ref, "ringing", sip_code=code, call_id=leg.call_id)
        elif state == pj.PJSIP_INV_STATE_CONFIRMED and not leg.answered and not leg.confirmed:
            leg.confirmed = (code if leg.outgoing else 200, str(info.remoteUri))
            if leg.negotiated or not leg.outgoing:
                self._answered(leg)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._on_disconnected(leg, code, str(info.lastReason))

    def _realign_event_pt(self, leg: _Leg, rx_pt: int, tx_pt: int) -> None:
        """The answer named another telephone-event type than our offer: pjmedia receives events only
        on ours. RFC 3264 has the far end send on ours, but some send on their own: with
        `telephone_event_realign`, offer its type once more by a re-INVITE as soon as the call is
        answered; its answer then makes both types the same (once per call). Off by default: a
        compliant peer needs no re-INVITE, and a brittle one may drop the call over it."""
        if not leg.outgoing or leg.event_pt or rx_pt <= 0 or tx_pt <= 0 or rx_pt == tx_pt:
            return
        if not self.settings.telephone_event_realign:
            log.debug("call %s: answer has telephone-event %d, ours is %d", leg.ref, tx_pt, rx_pt)
            return
        leg.event_pt = tx_pt
        log.info("call %s: answer has telephone-event %d, not our %d: re-offering %d", leg.ref, tx_pt,
                 rx_pt, tx_pt)
        if leg.answered:
            self._commands.put(lambda: self._with_leg(leg.ref, self._reinvite))
        else:
            leg.pending_reinvite = True

    def _reinvite(self, leg: _Leg) -> None:
        leg.pending_reinvite = False
        leg.call.reinvite(pj.CallOpParam(True))

    def _answered(self, leg: _Leg) -> None:
        """Report the answer once the dialog is confirmed *and* its media negotiated: a 2xx whose SDP
        has no codec in common is confirmed for an instant and then ended by pjsua (415, 'SDP
        negotiation failed'); it is not an answered call (issue 12)."""
        assert leg.confirmed is not None
        code, remote = leg.confirmed
        leg.answered = True
        self._emit(leg.ref, "answered", sip_code=code, call_id=leg.call_id, remote_uri=remote)
        if leg.pending_reinvite:
            self._commands.put(lambda: self._with_leg(leg.ref, self._reinvite))

    def _on_disconnected(self, leg: _Leg, code: int, reason: str) -> None:
        self._detach_media(leg)
        del self._legs[leg.ref]
        self._active = len(self._legs)
        self._released.append(leg.call)  # dropped after this callback returns (call IDs are reused)
        reason = leg.timed_out or reason or f"SIP {code}"
        self._emit(leg.ref, "disconnected", sip_code=code, reason=reason, call_id=leg.call_id)

    def _detach_media(self, leg: _Leg) -> None:
        if leg.media is not None:
            self._recording_done(leg, leg.media.detach())
        leg.media = None
        leg.pending.clear()

    def _on_media_state(self, call: _Call) -> None:
        """The first negotiation and every later one (re-INVITE, UPDATE): hold, resume, a codec
        switch or a new address rebuild the stream, and the call's ports follow it."""
        leg = self._leg_of(call)
        if leg is None:
            return
        leg.negotiated = True  # pjsua reports media only after a successful offer/answer
        if leg.confirmed is not None and not leg.answered:
            self._answered(leg)
        audio = audio_state(call)
        if audio is None:
            return
        was_held = leg.held
        leg.held = not audio.receiving or audio.status != pj.PJSUA_CALL_MEDIA_ACTIVE
        if was_held and not leg.held:
            leg.rtp_seen = 0.0  # the RTP timeout starts again from now
        if audio.stream is None:
            if leg.media is not None:
                leg.media.attach(None, sending=False)
            self._emit(leg.ref, "media", call_id=leg.call_id, telephone_event=leg.telephone_event,
                       reason=audio.describe())
            return
        first = leg.media is None
        if leg.media is None:
            leg.media = CallMedia(leg.ref, audio.stream, self._media_q, self._reaper)
        leg.media.attach(audio.stream, sending=audio.sending)
        leg.telephone_event = audio.telephone_event
        self._realign_event_pt(leg, audio.rx_event_pt, audio.tx_event_pt)
        self._emit(leg.ref, "media", call_id=leg.call_id, telephone_event=leg.telephone_event,
                   reason=audio.describe())
        if not leg.media.detecting and self._wants_inband(leg):
            leg.media.start_detection()
        if first:
            pending, leg.pending = leg.pending, []
            for action in pending:
                action()

    def _wants_inband(self, leg: _Leg) -> bool:
        """In-band detection for this call: `always`; with `auto`, when telephone-event was not
        negotiated, or (`inband_fallback`) until the call's first RFC 4733 digit."""
        if self.inband_dtmf != "auto":
            return self.inband_dtmf == "always"
        return not leg.telephone_event or (self.settings.inband_fallback and not leg.rfc4733_heard)

    def _on_digit(self, call: _Call, digit: str, source: DigitSource) -> None:
        leg = self._leg_of(call)
        if leg is not None:
            self._report_digit(leg, digit, source)

    def _report_digit(self, leg: _Leg, digit: str, source: DigitSource) -> None:
        if source == "rfc4733" and not leg.rfc4733_heard:
            leg.rfc4733_heard = True
            if leg.media is not None and leg.media.detecting and not self._wants_inband(leg):
                leg.media.stop_detection()  # the fallback is not needed: this trunk sends events
        now = time.monotonic()
        if leg.merger.feed(digit, source, now) is not None:
            self._emit(leg.ref, "digit", digit=digit, source=source, call_id=leg.call_id)

    def _drain_media(self) -> None:
        while True:
            try:
                kind, ref, payload = self._media_q.get_nowait()
            except queue.Empty:
                break
            leg = self._legs.get(ref)
            media = leg.media if leg is not None else None
            if leg is None or media is None:
                continue
            if kind == "eof" and media.plays(payload):
                media.drop_player()
                self._emit(ref, "playback_done", call_id=leg.call_id)
            elif kind == "frames":
                for digit in media.feed(payload):
                    self._report_digit(leg, digit, "inband")
        self._advance_media()

    def _advance_media(self) -> None:
        """Start detection and tone sending that waited for audio.dtmf's background import."""
        if not DTMF.ready:
            return
        for leg in list(self._legs.values()):
            if leg.media is not None and leg.media.waiting:
                for digit in leg.media.advance():
                    self._report_digit(leg, digit, "inband")

    def _check_ring_timeouts(self) -> None:
        now = time.monotonic()
        for leg in list(self._legs.values()):
            if (leg.outgoing and not leg.answered and not leg.timed_out
                    and now - leg.started > self.settings.ring_timeout_s):
                leg.timed_out = "ring timeout"
                log.info("call %s: ring timeout after %.1f s", leg.ref, now - leg.started)
                self._do_hangup(leg, None)

    def _check_rtp(self) -> None:
        """Hang up answered calls whose far end has sent no RTP for `rtp_timeout_s` (it died, or the
        network between us did): without this such a call would last until the dialer's cap."""
        now = time.monotonic()
        if self.rtp_timeout_s <= 0 or now < self._next_rtp_check:
            return
        self._next_rtp_check = now + RTP_CHECK_S
        for leg in list(self._legs.values()):
            if not leg.answered or leg.media is None or leg.timed_out or leg.held:
                continue
            packets = self._rtp_received(leg)
            if packets != leg.rtp_packets or not leg.rtp_seen:
                leg.rtp_packets, leg.rtp_seen = packets, now
            elif now - leg.rtp_seen > self.rtp_timeout_s:
                leg.timed_out = "no RTP"
                log.warning("call %s: no RTP for %.1f s, hanging up", leg.ref, now - leg.rtp_seen)
                self._do_hangup(leg, None)

    @staticmethod
    def _rtp_received(leg: _Leg) -> int:
        try:
            info = leg.call.getInfo()
            index = next(i for i, m in enumerate(info.media) if m.type == pj.PJMEDIA_TYPE_AUDIO)
            return int(leg.call.getStreamStat(index).rtcp.rxStat.pkt)
        except (pj.Error, StopIteration):
            return -1

    # ---- owner thread: calls wait for the first registration ------------------------------------

    def _may_call(self, ref: str, uri: str, place: Callable[[], None]) -> bool:
        """Whether a call may go out now. With a registrar, calls wait for the first successful
        REGISTER (at most `register_wait_s`, then they fail) and fail at once while the last REGISTER
        failed: a trunk that wants registration would refuse them anyway, often as a misleading 403."""
        if not self.settings.registrar:
            return True
        state = self.registration
        if state is not None and 200 <= state[0] < 300:
            return True
        if state is not None:
            self._emit(ref, "error", reason=f"{NOT_REGISTERED}: {state[0]} {state[1]}", remote_uri=uri)
            return False
        if not any(held[0] == ref for held in self._held):
            log.info("call %s waits for the registration with %s", ref, self.settings.registrar)
            self._held.append((ref, uri, time.monotonic() + self.settings.register_wait_s, place))
        return False

    def _check_held(self) -> None:
        now = time.monotonic()
        late = [held for held in self._held if held[2] <= now]
        if not late:
            return
        self._held = [held for held in self._held if held[2] > now]
        s = self.settings
        for ref, uri, _, _ in late:
            why = f"{NOT_REGISTERED}: no registration with {s.registrar} in {s.register_wait_s} s"
            log.error("call %s: %s", ref, why)
            self._emit(ref, "error", reason=why, remote_uri=uri)

    def _release_held(self, why: str = "") -> None:
        """Place the held calls (registered) or fail them with `why`."""
        held, self._held = self._held, []
        for ref, uri, _, place in held:
            if why:
                self._emit(ref, "error", reason=why, remote_uri=uri)
            else:
                self._commands.put(place)

    def _on_reg_state(self, code: int, reason: str, expiration: int) -> None:
        self.registration = (code, reason)
        if self._held:
            ok = 200 <= code < 300
            self._release_held("" if ok else f"{NOT_REGISTERED}: {code} {reason}")
        if 200 <= code < 300:
            log.info("registered with %s (%d %s, expires in %d s)", self.settings.registrar, code, reason,
                     expiration)
        else:
            log.error("registration with %s failed: %d %s", self.settings.registrar, code, reason)
        self._emit(REGISTRATION_REF, "registration", sip_code=code, reason=reason)
