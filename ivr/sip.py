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

Beyond the contract: `local_port` (the SIP port actually bound, useful with port=0) and
`stop_recording(ref)`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pjsua2 as pj

from ivr.digits import DigitMerger, dtmf_from_info
from ivr.errors import IvrError
from ivr.settings import SipSettings

log = logging.getLogger(__name__)
pj_log = logging.getLogger(__name__ + ".pjsip")

EventKind = Literal[
    "incoming", "calling", "ringing", "answered", "media", "digit",
    "playback_done", "recording_done", "disconnected", "error",
]
DigitSource = Literal["rfc4733", "info", "inband", ""]
DtmfMethod = Literal["rfc4733", "info", "inband"]

MAX_CALLS = 4
"""PJSUA_MAX_CALLS of the pjsua2-python wheel."""
POLL_MS = 10
"""How long one libHandleEvents call may wait; commands wait at most this long."""
RATE = 8000
FRAME_BYTES = RATE * 20 // 1000 * 2
PJ_ETOOMANY = 70010
SLOT_RETRY_S = 2.0
"""How long a call waits for pjsua to free the slot of a call that has just ended."""


class SipError(IvrError):
    """The SIP user agent could not start or was used wrongly."""

    code = 603
    status_text = "Call failed"


@dataclass(frozen=True)
class SipEvent:
    """Something that happened to a call, reported through `on_event`."""

    ref: str
    """The caller's reference for outgoing calls; the UA-assigned one ('in-N') for incoming calls."""
    kind: EventKind
    t: float
    """time.monotonic() when the event happened."""
    sip_code: int | None = None
    """SIP status code of the response that caused it (final code on 'disconnected')."""
    reason: str = ""
    call_id: str = ""
    """The SIP Call-ID."""
    digit: str = ""
    source: DigitSource = ""
    telephone_event: bool | None = None
    """On 'media': whether telephone-event (RFC 4733) was negotiated."""
    remote_uri: str = ""


@dataclass
class _Leg:
    """What the owner thread keeps per live call."""

    ref: str
    call: _Call
    outgoing: bool
    started: float
    call_id: str = ""
    answered: bool = False
    media: Any = None
    telephone_event: bool | None = None
    ring_timed_out: bool = False
    player: _Player | None = None
    recorder: Any = None
    record_path: Path | None = None
    tap: _Tap | None = None
    source: _Source | None = None
    detector: Any = None
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


class _Player(pj.AudioMediaPlayer):  # type: ignore[misc]
    """A WAV player; its end-of-file callback runs on the clock thread and only reports."""

    def __init__(self, ua: SipUserAgent, ref: str, loop: bool) -> None:
        super().__init__()
        self.ua, self.ref, self.loop = ua, ref, loop

    def onEof2(self) -> None:
        if not self.loop:
            self.ua._media_q.put(("eof", self.ref, self))


class _Tap(pj.AudioMediaPort):  # type: ignore[misc]
    """Receives the far end's audio (8 kHz int16 frames) for in-band DTMF detection."""

    def __init__(self, ua: SipUserAgent, ref: str) -> None:
        super().__init__()
        self.ua, self.ref = ua, ref

    def onFrameReceived(self, frame: Any) -> None:
        if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO:
            self.ua._media_q.put(("frame", self.ref, bytes(frame.buf)))

    def onFrameRequested(self, frame: Any) -> None:
        frame.type = pj.PJMEDIA_FRAME_TYPE_NONE


class _Source(pj.AudioMediaPort):  # type: ignore[misc]
    """Sends queued 20 ms frames (in-band DTMF tones) into the call."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: deque[bytes] = deque()

    def onFrameRequested(self, frame: Any) -> None:
        try:
            chunk = self.chunks.popleft()
        except IndexError:
            frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
            return
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(chunk)
        frame.size = len(chunk)

    def onFrameReceived(self, frame: Any) -> None:
        return None


class _LogWriter(pj.LogWriter):  # type: ignore[misc]
    """pjsip's own log into `logging` (level 1 errors ... 5+ debug)."""

    def write(self, entry: Any) -> None:
        level = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}
        pj_log.log(level.get(entry.level, logging.DEBUG), "%s", str(entry.msg).rstrip())


def _audio_format() -> Any:
    fmt = pj.MediaFormatAudio()
    fmt.init(pj.PJMEDIA_FORMAT_PCM, RATE, 1, 20000, 16)
    return fmt


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
    ) -> None:
        self.settings = settings
        self.on_event = on_event
        self.port = settings.port if port is None else port
        self.rtp_port = settings.rtp_port if rtp_port is None else rtp_port
        self.accept_incoming = accept_incoming
        self.inband_dtmf = inband_dtmf or settings.inband_dtmf
        if self.inband_dtmf not in ("auto", "always", "never"):
            raise SipError(f"inband_dtmf must be auto, always or never, not {self.inband_dtmf!r}")
        self.capacity: int = max(1, min(settings.calls_per_process, MAX_CALLS))
        """Most calls this user agent carries at once."""
        self.local_port: int = 0
        """The SIP port bound, known after start()."""
        self._active = 0
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._media_q: queue.SimpleQueue[tuple[str, str, Any]] = queue.SimpleQueue()
        self._legs: dict[str, _Leg] = {}
        self._released: list[Any] = []
        self._later: list[tuple[float, Callable[[], None]]] = []
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._stopping = False
        self._stop_deadline = 0.0
        self._incoming_n = 0
        self._ep: Any = None
        self._acc: _Account | None = None

    # ---- public surface (any thread) -------------------------------------------------------

    @property
    def active(self) -> int:
        """Live calls (a thread-safe read of a counter the owner thread maintains)."""
        return self._active

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
            raise SipError(f"SIP user agent did not start: {self._start_error}") from self._start_error

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
        self._commands.put(lambda: self._with_media(ref, lambda leg: self._do_play(leg, wav, loop)))

    def stop_playback(self, ref: str) -> None:
        """Stop the current playback without a 'playback_done' event."""
        self._commands.put(lambda: self._with_leg(ref, self._drop_player))

    def record(self, ref: str, path: Path) -> None:
        """Record what the far end sends to a WAV file until the call ends ('recording_done')."""
        self._commands.put(lambda: self._with_media(ref, lambda leg: self._do_record(leg, path)))

    def stop_recording(self, ref: str) -> None:
        """Close the recording now ('recording_done')."""
        self._commands.put(lambda: self._with_leg(ref, self._close_recorder))

    def send_dtmf(self, ref: str, digits: str, method: DtmfMethod) -> None:
        """Send digits by RFC 4733 events, SIP INFO (application/dtmf-relay) or in-band tones."""
        self._commands.put(lambda: self._with_media(ref, lambda leg: self._do_dtmf(leg, digits, method)))

    # ---- owner thread: life cycle ----------------------------------------------------------

    def _run(self) -> None:
        try:
            self._create_endpoint()
        except Exception as exc:
            log.error("SIP user agent start failed: %s", exc)
            self._start_error = exc
            self._destroy_endpoint()
            self._started.set()
            return
        self._started.set()
        try:
            while not (self._stopping and (not self._legs or time.monotonic() > self._stop_deadline)):
                self._drain_commands()
                self._run_due()
                self._ep.libHandleEvents(POLL_MS)
                self._drain_media()
                self._check_ring_timeouts()
                self._released.clear()
        except Exception:
            log.exception("SIP owner loop failed")
        finally:
            self._shutdown()

    def _create_endpoint(self) -> None:
        s = self.settings
        self._ep = pj.Endpoint()
        self._ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = False
        cfg.uaConfig.maxCalls = self.capacity
        cfg.uaConfig.userAgent = s.user_agent
        cfg.medConfig.threadCnt = 0
        cfg.medConfig.hasIoqueue = False
        cfg.medConfig.clockRate = RATE
        cfg.medConfig.sndClockRate = RATE
        cfg.medConfig.channelCount = 1
        cfg.medConfig.noVad = True
        self._writer = _LogWriter()
        cfg.logConfig.writer = self._writer
        cfg.logConfig.level = s.log_level
        cfg.logConfig.consoleLevel = s.log_level
        cfg.logConfig.decor = 0
        self._ep.libInit(cfg)
        tcfg = pj.TransportConfig()
        tcfg.port = self.port
        tcfg.boundAddress = s.bind_address
        tcfg.publicAddress = s.public_address
        kind = pj.PJSIP_TRANSPORT_TCP if s.transport.lower() == "tcp" else pj.PJSIP_TRANSPORT_UDP
        tid = self._ep.transportCreate(kind, tcfg)
        self.local_port = int(self._ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])
        self._ep.libStart()
        self._ep.audDevManager().setNullDev()
        self._set_codecs()
        self._acc = _Account(self)
        self._acc.create(self._account_config(tid))
        log.info("SIP user agent on %s:%d/%s", s.bind_address, self.local_port, s.transport)

    def _set_codecs(self) -> None:
        wanted = [c.lower() for c in self.settings.codecs]
        for info in self._ep.codecEnum2():
            cid = str(info.codecId)
            rank = next((i for i, w in enumerate(wanted) if cid.lower().startswith(w)), None)
            self._ep.codecSetPriority(cid, 0 if rank is None else 255 - rank)

    def _account_config(self, tid: int) -> Any:
        s = self.settings
        acfg = pj.AccountConfig()
        host = s.public_address or s.bind_address
        user = s.caller_id or s.username or "ivrgate"
        acfg.idUri = f"sip:{user}@{host}:{self.local_port}"
        if s.registrar:
            acfg.idUri = f"sip:{s.username or user}@{s.registrar.removeprefix('sip:')}"
            acfg.regConfig.registrarUri = s.registrar
        if s.username:
            acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", s.realm, s.username, 0, s.password))
        if s.outbound_proxy:
            acfg.sipConfig.proxies.append(s.outbound_proxy)
        acfg.sipConfig.transportId = tid
        acfg.mediaConfig.transportConfig.port = self.rtp_port
        acfg.mediaConfig.transportConfig.portRange = s.rtp_ports_per_process
        acfg.mediaConfig.transportConfig.boundAddress = s.bind_address
        acfg.mediaConfig.transportConfig.publicAddress = s.public_address
        return acfg

    def _begin_stop(self, timeout_s: float) -> None:
        self._stopping = True
        self._stop_deadline = time.monotonic() + timeout_s
        for leg in list(self._legs.values()):
            self._do_hangup(leg, None)

    def _shutdown(self) -> None:
        for leg in list(self._legs.values()):
            self._detach_media(leg)
        self._legs.clear()
        self._active = 0
        self._released.clear()
        self._acc = None
        self._destroy_endpoint()
        log.info("SIP user agent on port %d stopped", self.local_port)

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
            try:
                command()
            except pj.Error as exc:
                log.warning("SIP command failed: %s", exc.info())
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

    def _with_media(self, ref: str, action: Callable[[_Leg], None]) -> None:
        def run(leg: _Leg) -> None:
            if leg.media is None:
                leg.pending.append(lambda: action(leg))
            else:
                action(leg)
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
        assert self._acc is not None
        call = _Call(self, self._acc)
        leg = _Leg(ref=ref, call=call, outgoing=True, started=time.monotonic())
        self._legs[ref] = leg
        self._active = len(self._legs)
        try:
            call.makeCall(uri, self._call_param(uri, caller_id, display, headers))
        except pj.Error as exc:
            del self._legs[ref]
            self._active = len(self._legs)
            self._released.append(call)
            if exc.status == PJ_ETOOMANY and retry_until > time.monotonic():
                # pjsua frees a slot a few polls after DISCONNECTED: try again shortly
                self._later.append((time.monotonic() + 0.02, lambda: self._do_call(
                    ref, uri, caller_id, display, headers, retry_until)))
                return
            self._emit(ref, "error", reason=f"{exc.title}: {exc.reason}", remote_uri=uri)
            return
        leg.call_id = str(call.getInfo().callIdString)
        self._emit(ref, "calling", call_id=leg.call_id, remote_uri=uri)

    def _call_param(self, uri: str, caller_id: str, display: str, headers: dict[str, str]) -> Any:
        s = self.settings
        prm = pj.CallOpParam(True)
        user = caller_id or s.caller_id
        name = display or s.display_name
        if user or name:
            host = s.public_address or s.bind_address
            ident = f"sip:{user or 'ivrgate'}@{host}"
            prm.txOption.localUri = f'"{name}" <{ident}>' if name else f"<{ident}>"
            if s.p_asserted_identity:
                headers.setdefault("P-Asserted-Identity", f"<{ident}>")
        for name_, value in headers.items():
            hdr = pj.SipHeader()
            hdr.hName, hdr.hValue = name_, value
            prm.txOption.headers.append(hdr)
        return prm

    def _do_answer(self, leg: _Leg, code: int) -> None:
        prm = pj.CallOpParam()
        prm.statusCode = code
        leg.call.answer(prm)

    def _do_hangup(self, leg: _Leg, code: int | None) -> None:
        prm = pj.CallOpParam()
        if code is not None:
            prm.statusCode = code
        leg.call.hangup(prm)

    def _do_play(self, leg: _Leg, wav: Path, loop: bool) -> None:
        self._drop_player(leg)
        player = _Player(self, leg.ref, loop)
        player.createPlayer(str(wav), 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(leg.media)
        leg.player = player

    def _drop_player(self, leg: _Leg) -> None:
        if leg.player is not None:
            self._stop_tx(leg.player, leg.media)
            self._released.append(leg.player)
            leg.player = None

    def _do_record(self, leg: _Leg, path: Path) -> None:
        self._close_recorder(leg)
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(str(path))
        leg.media.startTransmit(recorder)
        leg.recorder, leg.record_path = recorder, path

    def _close_recorder(self, leg: _Leg) -> None:
        if leg.recorder is None:
            return
        if leg.media is not None:
            self._stop_tx(leg.media, leg.recorder)
        leg.recorder = None  # the WAV header is finalised when the recorder is destroyed here
        self._emit(leg.ref, "recording_done", call_id=leg.call_id, reason=str(leg.record_path))

    def _do_dtmf(self, leg: _Leg, digits: str, method: DtmfMethod) -> None:
        if method == "inband":
            self._send_tones(leg, digits)
            return
        prm = pj.CallSendDtmfParam()
        prm.digits = digits
        prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO if method == "info" else pj.PJSUA_DTMF_METHOD_RFC2833
        leg.call.sendDtmf(prm)

    def _send_tones(self, leg: _Leg, digits: str) -> None:
        from audio.dtmf import generate  # numpy only when in-band DTMF is used

        pcm = generate(digits, rate=RATE).astype("<i2").tobytes()
        if leg.source is None:
            leg.source = _Source()
            leg.source.createPort(f"tones-{leg.ref}", _audio_format())
            leg.source.startTransmit(leg.media)
        leg.source.chunks.extend(
            pcm[i:i + FRAME_BYTES].ljust(FRAME_BYTES, b"\0") for i in range(0, len(pcm), FRAME_BYTES)
        )

    @staticmethod
    def _stop_tx(src: Any, dst: Any) -> None:
        if dst is None:
            return
        try:
            src.stopTransmit(dst)
        except pj.Error as exc:
            log.debug("stopTransmit: %s", exc.info())

    # ---- owner thread: callbacks -----------------------------------------------------------

    def _leg_of(self, call: _Call) -> _Leg | None:
        return next((leg for leg in self._legs.values() if leg.call is call), None)

    def _on_incoming(self, acc: _Account, prm: Any) -> None:
        call = _Call(self, acc, prm.callId)
        info = call.getInfo()
        if not self.accept_incoming or self._stopping or self._active >= self.capacity:
            op = pj.CallOpParam()
            op.statusCode = 486 if self.accept_incoming else 603
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
        elif state == pj.PJSIP_INV_STATE_CONFIRMED and not leg.answered:
            leg.answered = True
            self._emit(leg.ref, "answered", sip_code=code if leg.outgoing else 200, call_id=leg.call_id,
                       remote_uri=str(info.remoteUri))
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._on_disconnected(leg, code, str(info.lastReason))

    def _on_disconnected(self, leg: _Leg, code: int, reason: str) -> None:
        self._detach_media(leg)
        del self._legs[leg.ref]
        self._active = len(self._legs)
        self._released.append(leg.call)  # dropped after this callback returns (call IDs are reused)
        if leg.ring_timed_out:
            reason = "ring timeout"
        self._emit(leg.ref, "disconnected", sip_code=code, reason=reason, call_id=leg.call_id)

    def _detach_media(self, leg: _Leg) -> None:
        self._drop_player(leg)
        self._close_recorder(leg)
        for port in (leg.tap, leg.source):
            if port is not None:
                self._released.append(port)
        leg.tap = leg.source = None
        leg.media = None
        leg.pending.clear()

    def _on_media_state(self, call: _Call) -> None:
        leg = self._leg_of(call)
        if leg is None or leg.media is not None:
            return
        try:
            leg.media = call.getAudioMedia(-1)
            info = call.getInfo()  # keep it alive: its media vector is a view into it
            index = next(i for i, m in enumerate(info.media) if m.type == pj.PJMEDIA_TYPE_AUDIO)
            stream = call.getStreamInfo(index)
        except (pj.Error, StopIteration):
            return
        leg.telephone_event = stream.audRxEventPt > 0 or stream.audTxEventPt > 0
        self._emit(leg.ref, "media", call_id=leg.call_id, telephone_event=leg.telephone_event)
        if self.inband_dtmf == "always" or (self.inband_dtmf == "auto" and not leg.telephone_event):
            self._start_detection(leg)
        pending, leg.pending = leg.pending, []
        for action in pending:
            action()

    def _start_detection(self, leg: _Leg) -> None:
        from audio.dtmf import DtmfDetector  # numpy only when in-band DTMF is used

        leg.detector = DtmfDetector(rate=RATE)
        leg.tap = _Tap(self, leg.ref)
        leg.tap.createPort(f"tap-{leg.ref}", _audio_format())
        leg.media.startTransmit(leg.tap)

    def _on_digit(self, call: _Call, digit: str, source: DigitSource) -> None:
        leg = self._leg_of(call)
        if leg is not None:
            self._report_digit(leg, digit, source)

    def _report_digit(self, leg: _Leg, digit: str, source: DigitSource) -> None:
        now = time.monotonic()
        if leg.merger.feed(digit, source, now) is not None:
            self._emit(leg.ref, "digit", digit=digit, source=source, call_id=leg.call_id)

    def _drain_media(self) -> None:
        while True:
            try:
                kind, ref, payload = self._media_q.get_nowait()
            except queue.Empty:
                return
            leg = self._legs.get(ref)
            if leg is None:
                continue
            if kind == "eof" and payload is leg.player:
                self._drop_player(leg)
                self._emit(ref, "playback_done", call_id=leg.call_id)
            elif kind == "frame" and leg.detector is not None:
                for digit in _detected_digits(leg.detector, payload):
                    self._report_digit(leg, digit, "inband")

    def _check_ring_timeouts(self) -> None:
        now = time.monotonic()
        for leg in list(self._legs.values()):
            if (leg.outgoing and not leg.answered and not leg.ring_timed_out
                    and now - leg.started > self.settings.ring_timeout_s):
                leg.ring_timed_out = True
                log.info("call %s: ring timeout after %.1f s", leg.ref, now - leg.started)
                self._do_hangup(leg, None)


def _detected_digits(detector: Any, frame: bytes) -> list[str]:
    """Feed one 20 ms frame of int16 audio to audio.dtmf's detector; the digits that started."""
    import numpy as np

    events = detector.feed(np.frombuffer(frame, dtype="<i2"))
    return [e.digit for e in events if e.kind == "start"]
