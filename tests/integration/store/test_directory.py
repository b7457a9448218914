"""Rates, accounts and API keys, groups, do-not-call, virtual numbers, blobs and the outbox."""

from __future__ import annotations

import datetime as dt

import pytest
from argon2 import PasswordHasher

from store import accounts, blobs, lists, outbox, rating
from store.db import Database
from store.errors import (
    DuplicateEntry,
    InvalidRates,
    NoRate,
    WrongCredentials,
)
from store.models import Rate
from tests.integration.store.conftest import make_owner

pytestmark = pytest.mark.integration

RATES_CSV = """prefix,sms,voice,tts,currency,description
,0.05,0.10,0.12,USD,everywhere else
1,0.0075,0.013,0.015,USD,North America
1250,0.006,,0.014,usd,British Columbia
44,0.04,0.02,0.025,EUR,United Kingdom
"""


def test_csv_import_and_longest_prefix(db: Database) -> None:
    with db.transaction() as session:
        assert rating.import_rates(session, rating.parse_rates_csv(RATES_CSV)) == 4
    with db.read() as session:
        assert rating.price_for(session, "+12506063167", "sms") == (6_000, "USD")
        assert rating.price_for(session, "+12506063167", "tts") == (14_000, "USD")
        assert rating.price_for(session, "+13105550100", "voice") == (13_000, "USD")
        assert rating.price_for(session, "+447700900123", "sms") == (40_000, "EUR")
        assert rating.price_for(session, "+33612345678", "vtts") == (120_000, "USD")
        with pytest.raises(NoRate):  # voice not offered under 1250
            rating.price_for(session, "+12506063167", "voice")
    with db.transaction() as session:  # replace_all drops the default rate
        rating.import_rates(session, rating.parse_rates_csv("prefix,sms\n1,0.01\n"), replace_all=True)
    with db.read() as session:
        assert [r.prefix for r in rating.list_rates(session)] == ["1"]
        assert rating.find_rate(session, "+33612345678") is None
        with pytest.raises(NoRate):
            rating.price_for(session, "+33612345678", "sms")


def test_bad_csv_imports_nothing(db: Database) -> None:
    with pytest.raises(InvalidRates) as caught:
        rating.parse_rates_csv("prefix,sms\n1,0.01\n2,abc\n")
    assert "line 3" in caught.value.detail
    with db.read() as session:
        assert session.query(Rate).count() == 0


def test_usernames_are_unique_ignoring_case(db: Database, now: dt.datetime, hasher: PasswordHasher) -> None:
    """(Logins themselves: the one login verdict, tests/integration/api/test_login.py.)"""
    owner = make_owner(db, now, hasher, username="User888@Yahoo.ca")
    with db.read() as session:
        found = accounts.find_account(session, " USER888@yahoo.ca")
        assert found is not None and (found.id, found.username) == (owner.id, "user888@yahoo.ca")
        assert accounts.find_account(session, "nobody@yahoo.ca") is None
        assert accounts.find_account(session, "not-an-address") is None
    with pytest.raises(DuplicateEntry), db.transaction() as session:
        accounts.create_account(session, username="USER888@yahoo.ca", password="x", now=now, hasher=hasher)


def test_api_keys(db: Database, now: dt.datetime, hasher: PasswordHasher) -> None:
    owner = make_owner(db, now, hasher)
    with db.transaction() as session:
        row, key = accounts.create_api_key(session, owner, now, name="ci")
        assert key.startswith(f"ivg_{row.prefix}_") and key not in row.key_hash
    with db.transaction() as session:
        assert accounts.verify_api_key(session, key, now).id == owner.id
        for forged in (key[:-1] + ("A" if key[-1] != "A" else "B"), "ivg_00000000_x", "garbage", ""):
            with pytest.raises(WrongCredentials):
                accounts.verify_api_key(session, forged, now)
        assert accounts.revoke_api_key(session, owner, row.prefix, now)
    with pytest.raises(WrongCredentials), db.transaction() as session:
        accounts.verify_api_key(session, key, now)


def test_groups(db: Database, now: dt.datetime, hasher: PasswordHasher) -> None:
    owner = make_owner(db, now, hasher)
    other = make_owner(db, now, hasher, username="other@example.com")
    with db.transaction() as session:
        group = lists.create_group(session, owner.id, "Test_Group", now)
        assert lists.add_members(session, group, [("+12506063167", "Adam"), ("+12508763211", "")]) == 2
        assert lists.add_members(session, group, [("+12506063167", "Adam S.")]) == 0
        lists.create_group(session, other.id, "Test_Group", now)  # same name, another account: fine
    with pytest.raises(DuplicateEntry), db.transaction() as session:
        lists.create_group(session, owner.id, "Test_Group", now)
    with db.transaction() as session:
        assert lists.group_phones(session, owner.id, "Test_Group") == ["+12506063167", "+12508763211"]
        assert lists.group_phones(session, other.id, "Test_Group") == []
        assert lists.group_phones(session, owner.id, "Test%") is None
        found = lists.find_group(session, owner.id, "Test_Group")
        assert found is not None
        lists.remove_members(session, found, ["+12508763211"])
        assert lists.group_phones(session, owner.id, "Test_Group") == ["+12506063167"]


def test_do_not_call_global_and_per_account(db: Database, now: dt.datetime, hasher: PasswordHasher) -> None:
    owner = make_owner(db, now, hasher)
    other = make_owner(db, now, hasher, username="other@example.com")
    with db.transaction() as session:
        lists.add_do_not_call(session, "+12505550001", now)
        lists.add_do_not_call(session, "+12505550001", now)  # twice is harmless
        lists.add_do_not_call(session, "+12505550002", now, account_id=owner.id, note="asked us")
        numbers = ["+12505550001", "+12505550002", "+12505550003"]
        assert lists.blocked(session, owner.id, numbers) == {"+12505550001", "+12505550002"}
        assert lists.blocked(session, other.id, numbers) == {"+12505550001"}
        assert lists.remove_do_not_call(session, "+12505550002") == 0  # not global
        assert lists.remove_do_not_call(session, "+12505550002", owner.id) == 1
        assert lists.blocked(session, owner.id, numbers) == {"+12505550001"}


def test_virtual_numbers(db: Database, now: dt.datetime, hasher: PasswordHasher) -> None:
    owner = make_owner(db, now, hasher)
    with db.transaction() as session:
        lists.set_virtual_number(session, "+12505550100", owner.id, "https://a.example/in", now)
        lists.set_virtual_number(session, "+12505550100", owner.id, "https://b.example/in", now)
    with db.read() as session:
        row = lists.virtual_number(session, "+12505550100")
        assert row is not None and (row.account_id, row.webhook_url) == (owner.id, "https://b.example/in")
        assert lists.virtual_number(session, "+12505550101") is None
        assert [n.number for n in lists.account_numbers(session, owner.id)] == ["+12505550100"]


def test_blobs_are_content_addressed(db: Database, now: dt.datetime) -> None:
    data = bytes(range(256)) * 100
    with db.transaction() as session:
        digest = blobs.put_blob(session, data, now, "audio/wav", "upload:a.wav")
        assert blobs.put_blob(session, data, now, "audio/wav", "https://x.example/a.wav") == digest
    with db.read() as session:
        assert blobs.get_blob(session, digest) == data and blobs.get_blob(session, "0" * 64) is None


def test_outbox_claim_retry_deliver(db: Database, now: dt.datetime) -> None:
    with db.transaction() as session:
        item = outbox.enqueue(
            session,
            kind=outbox.WEBHOOK,
            url="https://h.example/sms",
            body='{"txt": "hi"}',
            now=now,
            secret_ref="account:1",
        )
    with db.transaction() as session:
        (claimed,) = outbox.claim_due(session, now, lease_s=60)
        assert claimed.id == item.id and claimed.attempts == 1
        assert outbox.claim_due(session, now + dt.timedelta(seconds=59)) == []  # a sender holds it
        assert outbox.failed(session, item.id, now, "HTTP 500")
    with db.transaction() as session:
        assert outbox.claim_due(session, now + dt.timedelta(seconds=29)) == []
        (again,) = outbox.claim_due(session, now + dt.timedelta(seconds=30))  # 30 s after the 1st failure
        assert again.attempts == 2 and again.last_error == "HTTP 500"
        outbox.delivered(session, item.id, now + dt.timedelta(seconds=31))
    with db.read() as session:
        assert outbox.pending(session) == 0
        assert outbox.claim_due(session, now + dt.timedelta(days=1)) == []


def test_outbox_gives_up(db: Database, now: dt.datetime) -> None:
    with db.transaction() as session:
        item = outbox.enqueue(session, kind=outbox.CALLBACK, url="https://h.example/cb", body="{}", now=now)
        outbox.claim_due(session, now)
        assert not outbox.failed(session, item.id, now, "refused", max_attempts=1)
        assert outbox.claim_due(session, now + dt.timedelta(days=3650)) == []
        assert outbox.pending(session) == 1
