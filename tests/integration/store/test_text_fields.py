"""Unicode and SQL metacharacters survive every text field unchanged and match nothing else."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from argon2 import PasswordHasher

from store import accounts, blobs, ledger, lists, outbox, queue, rating
from store.db import Database

pytestmark = pytest.mark.integration

NASTY = "Zoë 'O\"Brien'; DROP TABLE messages;-- %_ \\ 中文 𝄞 ‮"


def test_every_text_field_round_trips(db: Database, now: dt.datetime, hasher: PasswordHasher) -> None:
    username = "zoë.o'brien+%_\\;--@exämple.com"
    with db.transaction() as session:
        owner = accounts.create_account(session, username=username, password=NASTY, now=now, hasher=hasher)
        ledger.top_up(session, owner.id, 1_000_000, now, note=NASTY)
        _, key = accounts.create_api_key(session, owner, now, name=NASTY)
        message = queue.create_message(
            session,
            owner,
            queue.NewMessage(
                kind="sms",
                phone="+12506063167",
                job_id="d" * 32,
                callerid="Zoë'%_;--",
                body=NASTY,
                settings={"note": NASTY, "language": "es"},
                callback_url=f"https://x.example/?q={NASTY}",
                reserved=1_000,
            ),
            now,
        )
        ledger.reserve_for(session, owner, [message], now)
        queue.add_event(session, message.id, "note", now, NASTY)
        group = lists.create_group(session, owner.id, NASTY, now)
        lists.add_members(session, group, [("+12506063167", NASTY)])
        lists.add_do_not_call(session, "+12505550001", now, owner.id, note=NASTY)
        lists.set_virtual_number(session, "+12505550100", owner.id, f"https://h.example/{NASTY}", now)
        digest = blobs.put_blob(session, NASTY.encode(), now, origin=NASTY)
        item = outbox.enqueue(
            session, kind="webhook", url=NASTY, body=json.dumps({"t": NASTY}), now=now, secret_ref=NASTY
        )
        rating.import_rates(
            session, rating.parse_rates_csv(_csv([["prefix", "sms", "description"], ["1", "0.01", NASTY]]))
        )
    with db.transaction() as session:
        found = accounts.find_account(session, username.upper())
        assert found is not None and hasher.verify(found.password_hash, NASTY)
        assert found.username == username and accounts.verify_api_key(session, key, now).id == owner.id
        loaded = queue.get_message(session, message.id, found)
        assert (loaded.body, loaded.callerid, loaded.settings["note"]) == (NASTY, "Zoë'%_;--", NASTY)
        assert loaded.callback_url.endswith(NASTY) and loaded.events[-1].detail == NASTY
        assert lists.group_phones(session, owner.id, NASTY) == ["+12506063167"]
        assert lists.group_phones(session, owner.id, "%") is None
        assert lists.blocked(session, owner.id, ["+12505550001", "%"]) == {"+12505550001"}
        vn = lists.virtual_number(session, "+12505550100")
        assert vn is not None and vn.webhook_url.endswith(NASTY)
        assert blobs.get_blob(session, digest) == NASTY.encode()
        (claimed,) = outbox.claim_due(session, now)
        assert (claimed.id, claimed.url, claimed.secret_ref) == (item.id, NASTY, NASTY)
        assert json.loads(claimed.body) == {"t": NASTY}
        assert [r.description for r in rating.list_rates(session)] == [NASTY]
        assert [e.note for e in ledger.entries(session, owner.id) if e.kind == "topup"] == [NASTY]
        assert accounts.find_account(session, "%@exämple.com") is None


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()
