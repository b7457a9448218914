"""One SMPP connection on asyncio: framing, sequence numbers, bind, enquire_link and unbind.

The link answers the SMSC's enquire_link and unbind itself and passes everything else to its owner
(`sms.smpp.Esme`) through the `LinkOwner` methods, synchronously, in arrival order. Responses
(`respond`) wait for the end of the event loop's current round and go out together in one write: the
answers to a batch of receipts stored in one transaction cost one send, not one each.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Protocol, runtime_checkable

from sms import pdu
from sms.errors import BindFailed, PduError

log = logging.getLogger(__name__)

BIND_COMMANDS = {"transceiver": pdu.BIND_TRANSCEIVER, "transmitter": pdu.BIND_TRANSMITTER,
                 "receiver": pdu.BIND_RECEIVER}


class LinkOwner(Protocol):
    """What a link reports to the ESME."""

    def on_submit_resp(self, link: Link, seq: int, status: int, message_id: str) -> None: ...

    def on_deliver(self, link: Link, request: pdu.Pdu) -> None: ...

    def on_link_lost(self, link: Link) -> None: ...


@runtime_checkable
class StreamTransport(Protocol):
    """What a link uses of its transport: the methods every event loop's TCP transport has (asyncio's
    selector and proactor transports, uvloop's TCPTransport), none of their concrete classes, which
    differ between loops (uvloop's transport is no `asyncio.Transport`)."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...

    def is_closing(self) -> bool: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


class Link(asyncio.Protocol):
    """An SMPP session over one TCP connection."""

    def __init__(self, owner: LinkOwner, name: str) -> None:
        self.owner = owner
        self.name = name
        self.transport: StreamTransport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.last_heard = 0.0
        self._buffer = bytearray()
        self._replies: list[bytes] = []
        """Encoded responses waiting for `_flush_replies` (scheduled when the first was added)."""
        self._seq = 0
        self._waiting: dict[int, asyncio.Future[pdu.Pdu]] = {}

    # --- asyncio.Protocol ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, StreamTransport):  # structural: any loop's stream transport passes
            log.error("%s: %s is not a stream transport; closing", self.name, type(transport).__name__)
            transport.close()
            return
        self.transport = transport
        _no_delay(transport.get_extra_info("socket"))
        self.last_heard = asyncio.get_running_loop().time()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self.last_heard = asyncio.get_running_loop().time()
        try:
            for received in pdu.take_pdus(self._buffer):
                self._dispatch(received)
        except PduError as exc:
            log.error("%s: malformed PDU from the SMSC (%s), closing", self.name, exc)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(ConnectionResetError(f"{self.name}: connection lost"))
        self._waiting.clear()
        if not self.closed.done():
            self.closed.set_result(None)
        self.owner.on_link_lost(self)

    # --- sending ---------------------------------------------------------------------------------------
    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def next_seq(self) -> int:
        self._seq = self._seq % 0x7FFFFFFF + 1
        return self._seq

    def write(self, data: bytes) -> bool:
        """Write encoded PDUs; False when the connection is already gone."""
        if self.transport is None or self.transport.is_closing():
            return False
        self.transport.write(data)
        return True

    def respond(self, request: pdu.Pdu, status: int = pdu.ESME_ROK, body: bytes = b"") -> None:
        """Answer a request of the SMSC's: written with the other responses of this loop round."""
        if not self._replies:
            asyncio.get_running_loop().call_soon(self._flush_replies)
        self._replies.append(pdu.Pdu(request.command_id | pdu.RESPONSE, status, request.seq, body).to_bytes())

    def _flush_replies(self) -> None:
        if self._replies:
            replies, self._replies = self._replies, []
            self.write(b"".join(replies))

    async def request(self, command_id: int, body: bytes, timeout_s: float) -> pdu.Pdu:
        """Send a control request and wait for its response (bind, enquire_link, unbind)."""
        seq = self.next_seq()
        waiter: asyncio.Future[pdu.Pdu] = asyncio.get_running_loop().create_future()
        self._waiting[seq] = waiter
        if not self.write(pdu.Pdu(command_id, 0, seq, body).to_bytes()):
            self._waiting.pop(seq, None)
            raise ConnectionResetError(f"{self.name}: not connected")
        try:
            async with asyncio.timeout(timeout_s):  # not wait_for: it can swallow a cancellation (3.11)
                return await waiter
        finally:
            self._waiting.pop(seq, None)

    async def bind(self, mode: str, bind: pdu.Bind, timeout_s: float) -> str:
        """Bind as `mode` (transceiver, transmitter, receiver); the SMSC's system_id, or BindFailed."""
        response = await self.request(BIND_COMMANDS[mode], bind.to_body(), timeout_s)
        if response.status != pdu.ESME_ROK:
            raise BindFailed(f"bind_{mode} refused: {pdu.status_name(response.status)}")
        return pdu.read_system_id(response.body)

    def close(self) -> None:
        self._flush_replies()  # an unbind_resp, or receipts' answers, before the connection closes
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # --- receiving -------------------------------------------------------------------------------------
    def _dispatch(self, received: pdu.Pdu) -> None:
        command = received.command_id
        if command == pdu.SUBMIT_SM | pdu.RESPONSE:
            self.owner.on_submit_resp(self, received.seq, received.status, _message_id(received))
        elif command & pdu.RESPONSE:
            self._resolve(received)
        elif command == pdu.DELIVER_SM:
            self.owner.on_deliver(self, received)
        elif command == pdu.ENQUIRE_LINK:
            self.respond(received)
        elif command == pdu.UNBIND:
            log.info("%s: the SMSC unbinds", self.name)
            self.respond(received)
            self.close()
        else:
            log.warning("%s: unexpected command 0x%08X", self.name, command)
            self.write(pdu.Pdu(pdu.GENERIC_NACK, pdu.ESME_RINVCMDID, received.seq).to_bytes())

    def _resolve(self, response: pdu.Pdu) -> None:
        waiter = self._waiting.get(response.seq)
        if waiter is not None and not waiter.done():
            waiter.set_result(response)
        elif response.command_id == pdu.GENERIC_NACK:
            self.owner.on_submit_resp(self, response.seq, response.status or pdu.ESME_RSYSERR, "")
        else:
            log.debug("%s: response 0x%08X seq %d matches no request", self.name, response.command_id,
                      response.seq)


def _no_delay(sock: Any) -> None:
    """Send small PDUs at once (asyncio sets TCP_NODELAY itself on TCP sockets, uvloop too; a loop that
    does not, or a socket-like object without setsockopt, is left as it is)."""
    setsockopt = getattr(sock, "setsockopt", None)
    if setsockopt is None:
        return
    try:
        setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:
        log.debug("TCP_NODELAY not set: %s", exc)


def _message_id(response: pdu.Pdu) -> str:
    try:
        return pdu.read_message_id(response.body)
    except PduError:
        return ""
