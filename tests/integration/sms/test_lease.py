"""The SMS sender against the node SMSC when its lease is lost: another sender takes the message over (the
failure is injected by rewriting the lease in the real store, as that sender's claim would) while the SMSC
holds the first part unanswered. The sender must stop working the message: no further part is handed to
the ESME, its slot is freed, and nothing it learns later is written over the new holder's message."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import update

from sms.sender import SenderOptions, SmsSender
from sms.smpp import Esme
from store.models import Message
from tests.integration.sms.conftest import Recorder, settings_for, wait_until
from tests.integration.sms.peer import Smsc
from tests.unit.sms.conftest import Store, sms_pg_cluster, store, store_template
from tests.unit.sms.stand_in import add_sms, read

__all__ = ["sms_pg_cluster", "store", "store_template"]

pytestmark = pytest.mark.integration
LONG = "The quick brown fox jumps over the lazy dog. " * 7  # 315 GSM-7 characters: 3 parts


def take_over(store: Store, message_id: str) -> None:
    with store.db.transaction() as session:
        session.execute(update(Message).where(Message.id == message_id).values(
            lease_owner="other:1", lease_expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)))


def test_a_lost_lease_stops_the_message_and_writes_nothing(smsc: Smsc, store: Store) -> None:
    smsc.configure(hold=True)  # every submit_sm is kept unanswered
    message_id = add_sms(store, LONG)

    async def scenario() -> tuple[int, int]:
        # lease_s 3: heartbeats a second apart (a third of the lease)
        sender = SmsSender(store.db, SenderOptions(worker_id="test:1", lease_s=3.0, poll_interval_s=0.05))
        rec = Recorder()
        esme = Esme(settings_for(smsc, window=1, response_timeout_s=60.0, stalled_submit_s=600.0),
                    on_accepted=sender.on_accepted, on_refused=sender.on_refused,
                    on_receipt=sender.on_receipt, on_incoming=rec.on_incoming)
        sender.attach(esme)
        await esme.start()
        task = asyncio.create_task(sender.run())
        try:
            await wait_until(lambda: smsc.state()["stats"]["held"] == 1, what="part 1 held by the SMSC")
            assert sender.in_flight == 1  # part 2 waits for the ESME's window of 1
            await asyncio.to_thread(take_over, store, message_id)
            await wait_until(lambda: sender.in_flight == 0, what="the sender to let the message go")
            handed = esme.health().window_in_use
        finally:
            await sender.stop(timeout_s=0.0)
            await task
            await esme.stop(timeout_s=0.0)
        return handed, smsc.state()["stats"]["held"]

    handed, held = asyncio.run(scenario())
    assert (handed, held) == (1, 1)  # parts 2 and 3 were never handed to the ESME
    message = read(store.db, message_id)
    assert (message.lease_owner, message.status_code, message.finished_at) == ("other:1", 100, None)
    assert not message.smsc_ids and message.cost is None
