"""A pure stand-in for sms.smpp.Esme in unit tests: answers parts and sends receipts through the same
callbacks, one at a time and in order (as the real ESME promises), without a socket."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from sms import gsm
from sms.receipts import Receipt
from sms.sender import SmsSender, parse_key
from sms.smpp import OutgoingPart
from store import ledger, queue
from store.db import Database
from store.models import Account, Message
from tests.unit.sms.conftest import SMS_RATE, T0, Store


@dataclass
class StandInEsme:
    """Refuses the parts `refuse` names (part number -> command_status); answers the others with an ID
    and then a receipt whose state `receipt_state(part)` gives (None: no receipt; a tuple: one receipt
    per state, in that order)."""

    sender: SmsSender
    refuse: dict[int, int] = field(default_factory=dict)
    receipt_state: Callable[[int], str | tuple[str, ...] | None] = lambda _part: "DELIVRD"
    parts: list[OutgoingPart] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _events: asyncio.Queue[Callable[[], object]] = field(default_factory=asyncio.Queue)

    async def submit(self, part: OutgoingPart) -> None:
        self.parts.append(part)
        parsed = parse_key(part.key)
        assert parsed is not None
        number = parsed[1]
        if number in self.refuse:
            status = self.refuse[number]
            self._events.put_nowait(lambda: self.sender.on_refused(part.key, status, "ESME_RSUBMITFAIL"))
            return
        smsc_id = f"{next(self._ids):010d}"
        self._events.put_nowait(lambda: self.sender.on_accepted(part.key, smsc_id))
        states = self.receipt_state(number)
        for state in (states,) if isinstance(states, str) else states or ():
            self.receipt(smsc_id, state)

    def receipt(self, smsc_id: str, state: str) -> None:
        """Send a receipt for `smsc_id` after what is queued already."""
        receipt = Receipt(smsc_id, state, "000" if state == "DELIVRD" else "001", None, "")
        self._events.put_nowait(lambda: self.sender.on_receipt(receipt))

    async def dispatch(self) -> None:
        while True:
            call = await self._events.get()
            result = call()
            assert asyncio.iscoroutine(result)
            await result


def add_sms(store: Store, text: str, phone: str = "+12505550123", *, tts_fallback: bool = False,
            callerid: str = "+12505550100") -> str:
    """Queue one SMS with its reservation, as the service does."""
    with store.db.transaction() as session:
        owner = session.get(Account, store.owner_id)
        assert owner is not None
        try:
            parts = gsm.count_parts(text)
        except Exception:
            parts = 1
        spec = queue.NewMessage(kind="sms", phone=phone, job_id=queue.new_message_id(), callerid=callerid,
                                body=text, settings={"tts_fallback": tts_fallback}, parts=parts,
                                rate=SMS_RATE, reserved=parts * SMS_RATE)
        message = queue.create_message(session, owner, spec, T0)
        ledger.reserve_for(session, owner, [message], T0)
        return message.id


def read(db: Database, message_id: str) -> Message:
    with db.read() as session:
        message = queue.get_message(session, message_id)
        _ = message.sms_parts
        session.expunge_all()
        return message


async def run_until(sender: SmsSender, esme: StandInEsme, done: Callable[[], bool],
                    timeout_s: float = 10.0) -> None:
    """Run the sender and the stand-in until `done()` holds (checked against the store)."""
    sender.attach(esme)
    tasks = [asyncio.create_task(sender.run()), asyncio.create_task(esme.dispatch())]
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not await asyncio.to_thread(done):
            assert asyncio.get_running_loop().time() < deadline, "the sender did not get there in time"
            await asyncio.sleep(0.02)
    finally:
        await sender.stop(timeout_s=1.0)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


