"""The ESME: submits parts to the SMSC over SMPP 3.4 and reports what comes back.

One `Esme` keeps one bind (a transceiver, or a transmitter and a receiver) up: it reconnects with
backoff, sends enquire_link, keeps at most `window` parts in its hands (submit() waits for room), paces
submit_sm at `rate_per_s`, backs off and resubmits on ESME_RTHROTTLED, and resubmits every part the SMSC
had not acknowledged when a connection died. Outcomes and MO messages reach the callbacks one at a time,
in arrival order; receipts' on_receipt calls start in arrival order too (a part's on_accepted always runs
before its receipt's on_receipt) but up to `RECEIPTS_AT_ONCE` of them run at once, so the receipts of a
busy SMSC are stored together (the sender writes them a batch a transaction) and do not hold up the
submit_sm outcomes behind them. The SMSC gets each deliver_sm_resp only after its callback returned, so a
failed callback means redelivery.
MO parts are joined in memory for `on_incoming`, or, with `on_mo_part`, handed over one deliver_sm at a
time for the caller to store before they are answered (sms.inbound: nothing lost across a restart).

Size: the ESME is one state machine over one connection (bind, window, enquire_link, throttling, submit,
receipt and MO dispatch); the PDU codec is sms.pdu and the transport sms.link.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sms import gsm, pdu
from sms.errors import BindFailed, EsmeStopped, PduError
from sms.link import Link
from sms.receipts import ID_FORMS, Incoming, Reassembler, Receipt, is_receipt, parse_receipt

__all__ = ["BindState", "Esme", "EsmeHealth", "EsmeStats", "Incoming", "OutgoingPart", "Receipt",
           "SmppSettings"]

log = logging.getLogger(__name__)

_RETRY_LATER = frozenset({pdu.ESME_RTHROTTLED, pdu.ESME_RMSGQFUL})
RECEIPTS_AT_ONCE = 1024
"""Receipts whose on_receipt may run at once (each deliver_sm answered when its own call returned); the
dispatch of further events waits while this many are running."""
_NUMBER = re.compile(r"\+?[0-9]+")
_SHORT_CODE = re.compile(r"[0-9]{3,8}")
GSM_DATA_CODINGS = (0x00, 0x01, 0xF0)


@dataclass(frozen=True)
class SmppSettings:
    """How to reach and treat the SMSC (docs/sms.md)."""

    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    bind: str = "transceiver"
    """transceiver | transmitter+receiver"""
    window: int = 16
    """Parts the ESME holds at once (queued or sent and unacknowledged); submit() waits for room."""
    rate_per_s: float = 200.0
    """submit_sm per second at most; 0 = unpaced."""
    enquire_link_s: float = 30.0
    response_timeout_s: float = 30.0
    """How long a response is awaited. A bind or enquire_link unanswered this long means the connection is
    dead (reconnect; unanswered parts are resubmitted). A submit_sm unanswered this long is NOT sent again:
    an enquire_link probes the link, and while the SMSC answers it the part is waited for (SMPP has no
    idempotent submit; a resent part the SMSC had taken is a second SMS on the handset)."""
    stalled_submit_s: float = 300.0
    """A submit_sm unanswered this long although the SMSC answers enquire_link: the session is taken as
    broken, rebuilt, and the part resubmitted (at-least-once: it may then reach the handset twice)."""
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    throttle_backoff_s: float = 1.0
    """First pause after ESME_RTHROTTLED; doubles while the SMSC keeps throttling, up to 16 times it."""
    max_parts: int = 6
    use_message_payload: bool = False
    """Carry the text in the message_payload TLV instead of short_message."""
    max_resubmits: int = 5
    """Connection losses a part may live through unacknowledged before it is refused."""
    source_ton: int = 1
    source_npi: int = 1
    """International numbers (a '+' or more than 8 digits) as the sender."""
    alphanumeric_ton: int = 5
    alphanumeric_npi: int = 0
    short_code_ton: int = 3
    short_code_npi: int = 0
    """A sender of 3-8 digits without '+': a short code (TON 3, network specific)."""
    dest_ton: int = 1
    dest_npi: int = 1
    validity_period: str = ""
    """How long the SMSC keeps trying: '' (its default), a duration (`48h`, `2d`, `90m`, `3600`) or an SMPP
    relative time `YYMMDDhhmmss000R`; sent as the relative time (SMPP 3.4 §7.1.1)."""
    gsm_data_coding: int = 0x00
    """data_coding of GSM-7 texts: 0x00 (SMSC default alphabet), 0x01 (IA5, which many SMSCs read as
    GSM-7) or 0xF0 (GSM 03.38 coding group: default alphabet, message class 0, shown at once)."""
    gsm_packed: bool = False
    """Pack GSM-7 septets into short_message (7 bits each; 160 septets in 140 octets) for SMSCs that
    enforce 140 octets; by default one septet per octet, the SMPP convention."""
    mo_timeout_s: float = 300.0
    """How long the parts of a concatenated MO message are awaited."""
    concat_ref_bits: int = 8
    """Concatenation references of long MT messages: 8 bits (UDH IEI 0x00) or 16 bits (IEI 0x08)."""
    receipt_id_form: str = "auto"
    """How a receipt's text `id:` relates to the submit_sm_resp message_id: auto, same, hex_to_decimal
    (response hex, receipt decimal) or decimal_to_hex (sms.receipts.ID_FORMS)."""

    def __post_init__(self) -> None:
        if self.concat_ref_bits not in gsm.REFERENCE_BITS:
            raise ValueError(f"concat_ref_bits must be 8 or 16, not {self.concat_ref_bits}")
        if self.mo_timeout_s <= 0:
            raise ValueError(f"mo_timeout_s must be > 0, not {self.mo_timeout_s}")
        pdu.relative_validity(self.validity_period)  # ValueError names the setting's problem
        if self.gsm_data_coding not in GSM_DATA_CODINGS:
            raise ValueError(f"gsm_data_coding must be 0x00, 0x01 or 0xF0, not {self.gsm_data_coding:#04x}")
        if self.response_timeout_s <= 0 or self.stalled_submit_s < self.response_timeout_s:
            raise ValueError("response_timeout_s must be > 0, stalled_submit_s at least response_timeout_s")
        if self.receipt_id_form not in ID_FORMS:
            raise ValueError(f"receipt_id_form must be one of {', '.join(ID_FORMS)}, "
                             f"not {self.receipt_id_form!r}")


@dataclass(frozen=True)
class OutgoingPart:
    """One submit_sm. `key` (message id + ':' + part index) identifies it in every callback."""

    key: str
    source: str
    destination: str
    short_message: bytes
    data_coding: int
    esm_class: int
    registered_delivery: bool = True


@dataclass
class EsmeStats:
    """Counters since start (for logs, metrics and benchmarks)."""

    submitted: int = 0
    accepted: int = 0
    refused: int = 0
    throttled: int = 0
    resubmitted: int = 0
    connects: int = 0
    receipts: int = 0
    incoming: int = 0


BINDING, BOUND, REFUSED, DOWN = "binding", "bound", "refused", "down"
BIND_STATES = (BINDING, BOUND, REFUSED, DOWN)
"""binding: connecting or waiting for the bind's answer; bound; refused: the SMSC answered the bind
with an error (wrong system_id or password, too many binds); down: no connection (refused, reset,
timed out, lost). `reason` keeps the last failure while the ESME retries."""


@dataclass(frozen=True)
class BindState:
    """One bind of the ESME (transceiver, or transmitter and receiver) as /healthz shows it."""

    mode: str
    state: str
    reason: str = ""


@dataclass(frozen=True)
class EsmeHealth:
    """What /healthz and /metrics show of an ESME."""

    binds: tuple[BindState, ...]
    window: int
    """Parts the ESME may hold at once (settings.window)."""
    window_in_use: int
    """Parts held now: queued, in flight, or waiting for their callback."""
    in_flight: int
    """submit_sm sent and not yet answered."""
    stats: EsmeStats


@dataclass
class _Entry:
    part: OutgoingPart
    losses: int = 0
    sent_at: float = 0.0


@dataclass
class _Event:
    kind: str
    entry: _Entry | None = None
    status: int = 0
    text: str = ""
    link: Link | None = None
    request: pdu.Pdu | None = None
    incoming: Incoming | None = None


@dataclass
class _Pacer:
    """A token bucket: `rate` per second with a burst of a twentieth of a second."""

    rate: float
    tokens: float = 1.0
    last: float = 0.0
    burst: float = field(init=False)

    def __post_init__(self) -> None:
        self.burst = max(1.0, self.rate / 20)

    def take(self, now: float, wanted: int) -> tuple[int, float]:
        """(parts allowed now, seconds until the next one if none)."""
        if self.rate <= 0:
            return wanted, 0.0
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        allowed = min(wanted, int(self.tokens))
        self.tokens -= allowed
        return allowed, 0.0 if allowed else (1.0 - self.tokens) / self.rate


Accepted = Callable[[str, str], Awaitable[None]]
Refused = Callable[[str, int, str], Awaitable[None]]


class Esme:
    """An SMPP client (ESME) that never drops a part it was given (see the module docstring)."""

    def __init__(self, settings: SmppSettings, *, on_accepted: Accepted, on_refused: Refused,
                 on_receipt: Callable[[Receipt], Awaitable[None]],
                 on_incoming: Callable[[Incoming], Awaitable[None]],
                 on_mo_part: Callable[[pdu.ShortMessage], Awaitable[None]] | None = None) -> None:
        if settings.bind not in ("transceiver", "transmitter+receiver"):
            raise ValueError(f"bind must be transceiver or transmitter+receiver, not {settings.bind!r}")
        self.settings = settings
        self.stats = EsmeStats()
        self._on_accepted, self._on_refused = on_accepted, on_refused
        self._on_receipt, self._on_incoming = on_receipt, on_incoming
        self._on_mo_part = on_mo_part
        self._room = asyncio.Semaphore(settings.window)
        self._pending: collections.deque[_Entry] = collections.deque()
        self._in_flight: dict[int, _Entry] = {}
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._tx: Link | None = None
        self._links: list[Link] = []
        self._pacer = _Pacer(settings.rate_per_s)
        self._paused_until = 0.0
        self._backoff = settings.throttle_backoff_s
        self._mo = Reassembler(dt.timedelta(seconds=settings.mo_timeout_s))
        self._tasks: list[asyncio.Task[None]] = []
        self._receipts: set[asyncio.Task[None]] = set()
        self._receipt_room = asyncio.Semaphore(RECEIPTS_AT_ONCE)
        self._stopping = False
        self._held = 0
        self._validity = pdu.relative_validity(settings.validity_period)
        modes = ["transceiver"] if settings.bind == "transceiver" else ["transmitter", "receiver"]
        self._binds = {mode: BindState(mode, BINDING) for mode in modes}

    # --- public surface --------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """Bound and able to submit."""
        return self._tx is not None and self._tx.open

    @property
    def in_flight(self) -> int:
        """submit_sm sent and not yet answered."""
        return len(self._in_flight)

    @property
    def held(self) -> int:
        """Parts in the ESME's hands: queued, in flight, or waiting for their callback."""
        return self._held

    def health(self) -> EsmeHealth:
        """Each bind's state, the window in use and the counters (for /healthz and /metrics)."""
        return EsmeHealth(tuple(self._binds.values()), self.settings.window, self._held, len(self._in_flight),
                          dataclasses.replace(self.stats))

    def _bind_state(self, mode: str, state: str, reason: str | None = None) -> None:
        """Record a bind's new state; without `reason` the last failure's stays (shown while retrying)."""
        kept = self._binds[mode].reason if reason is None else reason
        self._binds[mode] = BindState(mode, state, "" if state == BOUND else kept)

    async def start(self) -> None:
        """Start connecting (in the background: submit() works at once and waits for the bind)."""
        loop = asyncio.get_running_loop()
        self._pacer.last = loop.time()
        for coro in (self._supervise(), self._send_loop(), self._dispatch_loop(), self._watchdog()):
            self._tasks.append(asyncio.create_task(coro))

    async def submit(self, part: OutgoingPart) -> None:
        """Hand one part to the ESME; waits while `window` parts are held. Its outcome arrives through
        on_accepted or on_refused; a part is never silently dropped."""
        if self._stopping:
            raise EsmeStopped(f"part {part.key} submitted while stopping")
        await self._room.acquire()
        self._held += 1
        self._pending.append(_Entry(part))
        self._wake.set()

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Wait up to `timeout_s` for the held parts to be answered, unbind and close. Parts still
        unanswered then are logged and not reported: the caller still has them as not sent."""
        self._stopping = True
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._held and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        if self._held:
            log.warning("stopping with %d parts unanswered: %s", self._held,
                        [e.part.key for e in [*self._in_flight.values(), *self._pending]][:20])
        supervisor, *others = self._tasks
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor
        await self._unbind()
        receipts = list(self._receipts)  # unanswered receipts: the SMSC delivers them again
        for task in (*others, *receipts):
            task.cancel()
        for task in (*others, *receipts):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._drop_links()

    # --- connection ------------------------------------------------------------------------------------
    async def _supervise(self) -> None:
        delay = self.settings.reconnect_min_s
        while not self._stopping:  # stop() sets it before cancelling this task
            try:
                links = await self._connect()
            except (OSError, TimeoutError, BindFailed, PduError) as exc:
                log.warning("SMSC %s:%d: %s; retrying in %.1f s", self.settings.host, self.settings.port,
                            exc or type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.reconnect_max_s)
                continue
            delay = self.settings.reconnect_min_s
            self.stats.connects += 1
            self._links, self._tx = links, links[0]
            self._wake.set()
            await asyncio.wait([link.closed for link in links], return_when=asyncio.FIRST_COMPLETED)
            for mode in self._binds:
                self._bind_state(mode, DOWN, "connection lost")
            self._drop_links()

    async def _connect(self) -> list[Link]:
        modes = ["transceiver"] if self.settings.bind == "transceiver" else ["transmitter", "receiver"]
        links: list[Link] = []
        try:
            for mode in modes:
                links.append(await self._open(mode))
        except BaseException:
            for link, mode in zip(links, modes, strict=False):
                link.abort()
                self._bind_state(mode, DOWN, f"closed: the {modes[len(links)]} bind failed")
            raise
        return links

    async def _open(self, mode: str) -> Link:
        s = self.settings
        loop = asyncio.get_running_loop()
        self._bind_state(mode, BINDING)
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that meets
            # the connection completing, and stop() then waited for ever on a supervisor that went on
            # retrying
            async with asyncio.timeout(s.response_timeout_s):
                _, link = await loop.create_connection(lambda: Link(self, f"smpp-{mode}"), s.host, s.port)
        except (OSError, TimeoutError) as exc:
            self._bind_state(mode, DOWN, f"connecting to {s.host}:{s.port}: {exc or type(exc).__name__}")
            raise
        try:
            system_id = await link.bind(mode, pdu.Bind(s.system_id, s.password, s.system_type),
                                        s.response_timeout_s)
        except BindFailed as exc:
            self._bind_state(mode, REFUSED, str(exc))
            link.abort()
            raise
        except (OSError, TimeoutError, PduError) as exc:
            self._bind_state(mode, DOWN, f"bind_{mode} unanswered: {exc or type(exc).__name__}")
            link.abort()
            raise
        except BaseException:
            link.abort()
            raise
        self._bind_state(mode, BOUND)
        log.info("bound %s to %s:%d (%s)", mode, s.host, s.port, system_id)
        return link

    def _drop_links(self) -> None:
        """Close every link and put what was in flight back at the front of the queue."""
        links, self._links, self._tx = self._links, [], None
        for link in links:
            link.abort()
        lost = list(self._in_flight.values())
        self._in_flight.clear()
        for entry in reversed(lost):
            entry.losses += 1
            if entry.losses > self.settings.max_resubmits:
                self._events.put_nowait(_Event("refused", entry, pdu.ESME_RSYSERR,
                                               f"unacknowledged after {entry.losses} connection losses"))
            else:
                self.stats.resubmitted += 1
                self._pending.appendleft(entry)
        if lost:
            log.warning("connection lost with %d submit_sm unanswered: resubmitting", len(lost))

    async def _unbind(self) -> None:
        for link in list(self._links):
            with contextlib.suppress(OSError, TimeoutError, ConnectionError):
                await link.request(pdu.UNBIND, b"", min(2.0, self.settings.response_timeout_s))

    # --- sending ---------------------------------------------------------------------------------------
    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if not self._pending or not self.connected:
                self._wake.clear()
                await self._wake.wait()
            elif now < self._paused_until:
                await asyncio.sleep(self._paused_until - now)
            else:
                allowed, wait_s = self._pacer.take(now, len(self._pending))
                if allowed:
                    self._send_batch(allowed, now)
                    await asyncio.sleep(0)
                else:
                    await asyncio.sleep(wait_s)

    def _send_batch(self, count: int, now: float) -> None:
        link = self._tx
        assert link is not None
        chunks = []
        for _ in range(count):
            entry = self._pending.popleft()
            seq = link.next_seq()
            try:
                chunks.append(pdu.Pdu(pdu.SUBMIT_SM, 0, seq, self._submit_body(entry.part)).to_bytes())
            except (PduError, UnicodeEncodeError) as exc:
                self._events.put_nowait(_Event("refused", entry, pdu.ESME_RINVMSGLEN, str(exc)))
                continue
            entry.sent_at = now
            self._in_flight[seq] = entry
        self.stats.submitted += len(chunks)
        link.write(b"".join(chunks))

    def _submit_body(self, part: OutgoingPart) -> bytes:
        s = self.settings
        source, source_ton, source_npi = source_address(part.source, s)
        destination, dest_ton, dest_npi = part.destination.removeprefix("+"), s.dest_ton, s.dest_npi
        text, tlvs = part.short_message, {}
        if s.use_message_payload or _needs_payload(part, s.gsm_packed):
            text, tlvs = b"", {pdu.TLV_MESSAGE_PAYLOAD: part.short_message}
        data_coding = s.gsm_data_coding if part.data_coding == gsm.GSM7 else part.data_coding
        return pdu.ShortMessage(
            source, destination, text, data_coding, part.esm_class, int(part.registered_delivery),
            source_ton, source_npi, dest_ton, dest_npi, validity_period=self._validity, tlvs=tlvs).to_body()

    # --- what the SMSC says (called by Link, synchronously) ---------------------------------------------
    def on_submit_resp(self, link: Link, seq: int, status: int, message_id: str) -> None:
        entry = self._in_flight.pop(seq, None) if link is self._tx else None
        if entry is None:
            log.debug("submit_sm_resp seq %d matches nothing in flight", seq)
            return
        if status == pdu.ESME_ROK:
            self._backoff = self.settings.throttle_backoff_s
            self._events.put_nowait(_Event("accepted", entry, text=message_id))
        elif status in _RETRY_LATER:
            self._throttled(entry)
        else:
            self._events.put_nowait(_Event("refused", entry, status, pdu.status_name(status)))
        self._wake.set()

    def _throttled(self, entry: _Entry) -> None:
        self.stats.throttled += 1
        self._pending.appendleft(entry)
        now = asyncio.get_running_loop().time()
        if now >= self._paused_until:
            self._paused_until = now + self._backoff
            log.info("SMSC throttling: pausing submits for %.2f s", self._backoff)
            self._backoff = min(self._backoff * 2, self.settings.throttle_backoff_s * 16)

    def on_deliver(self, link: Link, request: pdu.Pdu) -> None:
        self._events.put_nowait(_Event("deliver", link=link, request=request))

    def on_link_lost(self, link: Link) -> None:
        self._wake.set()

    # --- callbacks, one at a time ---------------------------------------------------------------------
    async def _dispatch_loop(self) -> None:
        while True:
            event = await self._events.get()
            try:
                if event.kind == "deliver":
                    await self._deliver(event)
                elif event.kind == "incoming" and event.incoming is not None:
                    self.stats.incoming += 1
                    await self._on_incoming(event.incoming)
                else:
                    await self._outcome(event)
            except Exception:
                log.exception("SMS callback failed for %s event", event.kind)

    async def _outcome(self, event: _Event) -> None:
        assert event.entry is not None
        key = event.entry.part.key
        try:
            if event.kind == "accepted":
                self.stats.accepted += 1
                await self._on_accepted(key, event.text)
            else:
                self.stats.refused += 1
                log.info("part %s refused: %s", key, event.text)
                await self._on_refused(key, event.status, event.text)
        finally:
            self._held -= 1
            self._room.release()

    async def _deliver(self, event: _Event) -> None:
        """Hand a deliver_sm to its callback and answer it when that returned: a receipt in a task of its
        own (up to RECEIPTS_AT_ONCE at once; started now, so receipts reach on_receipt in arrival order),
        an MO part before the next event is dispatched."""
        assert event.link is not None and event.request is not None
        try:
            sm = pdu.ShortMessage.from_body(event.request.body)
        except PduError as exc:
            log.warning("malformed deliver_sm: %s", exc)
            event.link.respond(event.request, pdu.ESME_RSYSERR, pdu.message_id_body(""))
            return
        if not is_receipt(sm):
            await self._handle_deliver(event, sm)
            return
        await self._receipt_room.acquire()
        task = asyncio.create_task(self._handle_deliver(event, sm))
        self._receipts.add(task)
        task.add_done_callback(self._receipt_done)

    def _receipt_done(self, task: asyncio.Task[None]) -> None:
        self._receipts.discard(task)
        self._receipt_room.release()

    async def _handle_deliver(self, event: _Event, sm: pdu.ShortMessage) -> None:
        assert event.link is not None and event.request is not None
        status = pdu.ESME_ROK
        try:
            if is_receipt(sm):
                self.stats.receipts += 1
                await self._on_receipt(parse_receipt(sm, self.settings.receipt_id_form))
            elif self._on_mo_part is not None:  # the caller stores and joins the parts (sms.inbound)
                self.stats.incoming += 1
                await self._on_mo_part(sm)
            else:
                incoming = self._mo.add(sm, dt.datetime.now(dt.UTC))
                if incoming is not None:
                    self.stats.incoming += 1
                    await self._on_incoming(incoming)
        except PduError as exc:
            log.warning("malformed deliver_sm: %s", exc)
            status = pdu.ESME_RSYSERR
        except Exception:
            log.exception("deliver_sm handler failed; asking the SMSC to redeliver")
            status = pdu.ESME_RX_T_APPN
        event.link.respond(event.request, status, pdu.message_id_body(""))

    # --- timers ----------------------------------------------------------------------------------------
    async def _watchdog(self) -> None:
        """enquire_link when due, a dead connection when a response is late, stale MO parts handed on."""
        loop = asyncio.get_running_loop()
        s = self.settings
        tick = max(0.05, min(1.0, s.response_timeout_s / 4, s.enquire_link_s / 4))
        last_enquire = last_probe = loop.time()
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            waited = now - min(e.sent_at for e in self._in_flight.values()) if self._in_flight else 0.0
            if waited > s.stalled_submit_s:
                log.warning("no submit_sm_resp for %.1f s although the SMSC answers enquire_link: rebinding "
                            "and resubmitting the unanswered parts", waited)
                self._abort_links()
            elif waited > s.response_timeout_s and now - last_probe >= s.response_timeout_s:
                # a late answer is not a lost submit: probe the link, and wait on while it answers
                log.warning("no submit_sm_resp for %.1f s: SMSC slow, probing the link (parts not resent)",
                            waited)
                last_probe = last_enquire = now
                await self._enquire_all()
            elif now - last_enquire >= s.enquire_link_s:
                last_enquire = now
                await self._enquire_all()
            for incoming in self._mo.expire(dt.datetime.now(dt.UTC)):
                self._events.put_nowait(_Event("incoming", incoming=incoming))

    async def _enquire_all(self) -> None:
        for link in list(self._links):
            try:
                await link.request(pdu.ENQUIRE_LINK, b"", self.settings.response_timeout_s)
            except (TimeoutError, ConnectionError):
                log.warning("%s: enquire_link unanswered, reconnecting", link.name)
                self._abort_links()
                return

    def _abort_links(self) -> None:
        for link in self._links:
            link.abort()


def _needs_payload(part: OutgoingPart, packed: bool) -> bool:
    """A part longer than one SMS and without a UDH is a whole text for the SMSC to split."""
    if part.data_coding != gsm.GSM7:
        single = gsm.SINGLE_UNITS * 2
    else:
        single = gsm.AIR_OCTETS if packed else gsm.SINGLE_SEPTETS
    return len(part.short_message) > single and not part.esm_class & gsm.UDHI


def source_address(value: str, settings: SmppSettings) -> tuple[str, int, int]:
    """(source_addr, ton, npi) of a sender: '' goes as TON 0/NPI 0 (unknown: the SMSC's default sender),
    never as an empty alphanumeric address; 3-8 digits without '+' are a short code (`short_code_ton`,
    TON 3); other numbers are international (`source_ton`, TON 1) without their '+'; anything with
    letters is alphanumeric (`alphanumeric_ton`, TON 5)."""
    s = settings
    if not value:
        return "", 0, 0
    if _SHORT_CODE.fullmatch(value):
        return value, s.short_code_ton, s.short_code_npi
    if _NUMBER.fullmatch(value):
        return value.removeprefix("+"), s.source_ton, s.source_npi
    return value, s.alphanumeric_ton, s.alphanumeric_npi
