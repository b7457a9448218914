"""The test phone's front: one SIP address in front of several phone processes (a stateless proxy).

pjsua2 wheels carry at most 4 calls per process, so `ivrgate phone --processes N` runs N phone
processes, each on a port of its own, and this front on the public port. It forwards every new INVITE
to the child with the fewest calls (adding its own Via, as RFC 3261 section 16.11 has a stateless
proxy do), sends the child's responses back to where the request came from, and forwards the
requests that follow an INVITE to the same address (CANCEL, the ACK of a failure, retransmissions)
to the same child by Call-ID. It adds no Record-Route: the child's 200 names the child in Contact,
so ACK, BYE and INFO of an answered call go straight between the caller and that child. Any SIP
peer works with it unchanged, since to the caller it is the one address it called; no redirect
(302) has to be followed.

When every child carries `capacity` calls the front refuses the INVITE itself with 486 and logs it.

`FrontRouter` is pure (datagrams and a clock reading in, datagrams out); `PhoneFront` is its UDP
socket on a thread.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

Address = tuple[str, int]
BRANCH_PREFIX = "z9hG4bKivf"
"""Our Via branches: the RFC 3261 magic cookie, then a mark of this front."""
FORGET_S = 64.0
"""A finished call's Call-ID and a branch are forgotten after this long without traffic (64 x T1:
no retransmission or late CANCEL/ACK of a transaction comes later)."""
COMPACT = {"v": "via", "i": "call-id", "f": "from", "t": "to", "m": "contact", "l": "content-length"}


@dataclass
class SipMessage:
    """A SIP message split into its start line, its header lines (in order) and its body."""

    start: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def is_response(self) -> bool:
        return self.start.startswith("SIP/2.0 ")

    @property
    def method(self) -> str:
        """The request's method ('' for a response)."""
        return "" if self.is_response else self.start.split(" ", 1)[0].upper()

    @property
    def status(self) -> int:
        """The response's status code (0 for a request)."""
        if not self.is_response:
            return 0
        try:
            return int(self.start.split(" ", 2)[1])
        except (IndexError, ValueError):
            return 0

    def get(self, name: str) -> str:
        """The first value of a header (full or compact name), '' when absent."""
        want = name.lower()
        for key, value in self.headers:
            if COMPACT.get(key.lower(), key.lower()) == want:
                return value
        return ""

    @property
    def cseq_method(self) -> str:
        parts = self.get("cseq").split()
        return parts[1].upper() if len(parts) == 2 else ""

    def encode(self) -> bytes:
        lines = [self.start, *(f"{k}: {v}" for k, v in self.headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + self.body


def parse_message(data: bytes) -> SipMessage | None:
    """Split a datagram into a SipMessage; None for anything that is not SIP (keep-alives, junk)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    if not sep:
        return None
    lines = head.decode("utf-8", "surrogateescape").replace("\r\n", "\n").split("\n")
    start = lines[0].strip()
    if not start or not (start.startswith("SIP/2.0 ") or start.endswith(" SIP/2.0")):
        return None
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # a folded continuation line
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon:
            return None
        headers.append((name.strip(), value.strip()))
    return SipMessage(start, headers, body)


def via_branch(via: str) -> str:
    """The branch parameter of one Via value ('' when it has none)."""
    for param in via.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "branch":
            return value.strip()
    return ""


def _is_via(name: str) -> bool:
    return COMPACT.get(name.lower(), name.lower()) == "via"


@dataclass
class _Call:
    child: int
    active: bool = True
    seen: float = 0.0


@dataclass
class FrontRouter:
    """Decides where each datagram goes. `children` are the phone processes' SIP addresses,
    each carrying at most `capacity` calls; `me` is the front's own address (written in its Via)."""

    children: Sequence[Address]
    me: Address
    capacity: int = 4
    calls: dict[str, _Call] = field(default_factory=dict)
    """Call-ID -> its child, for every call the front has seen lately."""
    branches: dict[str, tuple[Address, float]] = field(default_factory=dict)
    """Our Via branch -> (where the request came from, when)."""
    refused: int = 0
    """INVITEs the front answered 486 because every child was full."""

    def load(self) -> list[int]:
        """Calls each child carries now (by the front's count)."""
        counts = [0] * len(self.children)
        for call in self.calls.values():
            if call.active:
                counts[call.child] += 1
        return counts

    def route(self, data: bytes, src: Address, now: float) -> list[tuple[bytes, Address]]:
        """The datagrams to send for one received datagram (possibly none)."""
        msg = parse_message(data)
        if msg is None:
            return []
        self._forget(now)
        if msg.is_response:
            return self._response(msg, now)
        if src in self.children:
            log.warning("phone front: request %s from a child ignored", msg.method)
            return []
        return self._request(msg, src, now)

    def ended(self, call_id: str, now: float) -> None:
        """A child reported the call over: its slot is free (the Call-ID stays known a while)."""
        call = self.calls.get(call_id)
        if call is not None:
            call.active, call.seen = False, now

    # ---- requests from callers

    def _request(self, msg: SipMessage, src: Address, now: float) -> list[tuple[bytes, Address]]:
        call_id = msg.get("call-id")
        if not call_id:
            return []
        call = self.calls.get(call_id)
        if call is None:
            if msg.method != "INVITE":
                return self._unknown(msg, src)
            child = self._pick()
            if child is None:
                self.refused += 1
                log.warning("phone: all %d processes carry %d calls; refused call %s with 486 (%d refused "
                            "so far)", len(self.children), self.capacity, call_id, self.refused)
                return [(reply(msg, 486, "Busy Here"), src)]
            call = self.calls[call_id] = _Call(child)
        call.seen = now
        return self._forward(msg, src, self.children[call.child], now)

    def _unknown(self, msg: SipMessage, src: Address) -> list[tuple[bytes, Address]]:
        if msg.method == "ACK":
            return []
        if msg.method in ("OPTIONS",) and self.children:
            return [(reply(msg, 200, "OK"), src)]
        return [(reply(msg, 481, "Call/Transaction Does Not Exist"), src)]

    def _pick(self) -> int | None:
        load = self.load()
        free = [(n, i) for i, n in enumerate(load) if n < self.capacity]
        return min(free)[1] if free else None

    def _forward(self, msg: SipMessage, src: Address, to: Address, now: float) -> list[tuple[bytes, Address]]:
        top = next((v for k, v in msg.headers if _is_via(k)), "")
        # deterministic: a retransmission, its CANCEL and the ACK of its failure get the same branch
        digest = hashlib.sha1(f"{via_branch(top)}|{msg.get('call-id')}|{src}".encode()).hexdigest()[:20]
        branch = BRANCH_PREFIX + digest
        self.branches[branch] = (src, now)
        via = f"SIP/2.0/UDP {self.me[0]}:{self.me[1]};branch={branch};rport"
        headers: list[tuple[str, str]] = [("Via", via)]
        for name, value in msg.headers:
            if name.lower() == "max-forwards" and value.isdigit():
                value = str(max(0, int(value) - 1))
            headers.append((name, value))
        return [(SipMessage(msg.start, headers, msg.body).encode(), to)]

    # ---- responses from children

    def _response(self, msg: SipMessage, now: float) -> list[tuple[bytes, Address]]:
        index = next((i for i, (k, _) in enumerate(msg.headers) if _is_via(k)), None)
        if index is None:
            return []
        name, value = msg.headers[index]
        first, comma, rest = value.partition(",")
        entry = self.branches.get(via_branch(first))
        if entry is None:
            return []  # not through us (or forgotten): nothing to do with it
        src, _ = entry
        self.branches[via_branch(first)] = (src, now)
        headers = list(msg.headers)
        if comma:
            headers[index] = (name, rest.strip())
        else:
            del headers[index]
        call = self.calls.get(msg.get("call-id"))
        if call is not None:
            call.seen = now
            if msg.cseq_method == "INVITE" and msg.status >= 300:
                call.active = False  # refused or cancelled: the slot is free
        return [(SipMessage(msg.start, headers, msg.body).encode(), src)]

    def _forget(self, now: float) -> None:
        old = [c for c, call in self.calls.items() if not call.active and now - call.seen > FORGET_S]
        for call_id in old:
            del self.calls[call_id]
        for branch in [b for b, (_, t) in self.branches.items() if now - t > FORGET_S]:
            del self.branches[branch]


def reply(request: SipMessage, code: int, text: str) -> bytes:
    """A response of the front itself: the request's Via, From, To (tagged), Call-ID and CSeq."""
    keep = {"via", "from", "to", "call-id", "cseq"}
    headers: list[tuple[str, str]] = []
    for name, value in request.headers:
        full = COMPACT.get(name.lower(), name.lower())
        if full not in keep:
            continue
        if full == "to" and ";tag=" not in value.replace(" ", "").lower():
            tag = hashlib.sha1(request.get("call-id").encode()).hexdigest()[:10]
            value = f"{value};tag=ivf{tag}"
        headers.append((name, value))
    headers.append(("Content-Length", "0"))
    return SipMessage(f"SIP/2.0 {code} {text}", headers, b"").encode()


class PhoneFront:
    """FrontRouter on a UDP socket, served by a thread of its own."""

    def __init__(self, bind: Address, children: Sequence[Address], *, capacity: int = 4,
                 clock: Callable[[], float]) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(bind)
        self._sock.settimeout(0.2)
        self.address: Address = self._sock.getsockname()
        self.router = FrontRouter(list(children), self.address, capacity)
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="phone-front", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._sock.close()

    def ended(self, call_id: str) -> None:
        """A child finished a call (from its JSON line): free its slot."""
        with self._lock:
            self.router.ended(call_id, self._clock())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, src = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                out = self.router.route(data, (src[0], int(src[1])), self._clock())
            for payload, to in out:
                try:
                    self._sock.sendto(payload, to)
                except OSError as exc:
                    log.warning("phone front: send to %s:%d failed: %s", to[0], to[1], exc)
