"""Gateway.write_jobs: many jobs in ONE transaction, each all or nothing. Every owner reserves from its
own balance, read once; a job the balance, a spending limit, a rate, a group or a changed login refuses
writes nothing while the others of its batch are stored; a login read from a recent snapshot is checked
again in the write. Through the app, concurrent submissions share group commits (a real uvicorn server
on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher
from sqlalchemy import func, select

from api.core.carrier import CarrierInfo, Country, LineType
from api.core.errors import InvalidPin
from api.core.jobs import Caller, Job, Submitted
from api.core.service import Gateway
from api.core.settings import Settings
from api.fronts.app import create_app
from coded.errors import CodedError
from store import accounts, ledger
from store.db import Database
from store.errors import AccountNotActive, WrongCredentials
from store.models import Account, LedgerEntry, Message
from tests.integration.api.conftest import (
    BALANCE,
    DNC_PHONE,
    NOW,
    OTHER,
    OWNER,
    PASSWORD,
    SUBUSER,
    World,
    account,
    counts,
    one,
)

pytestmark = pytest.mark.integration

ADAM, EVE = "+12506063167", "+12506058145"
TTS_RESERVE = 75_000
"""A TTS call to +1: 0.015 a minute for the 300 s maximum call length."""
SMS_RESERVE = 7_500
"""One SMS part to +1."""
UK = "+442079460000"
"""Rated for SMS only: a TTS call to it has no rate (513)."""
NEW_PASSWORD = "changed-pass-2026"

Outcome = list[Submitted] | CodedError


def tts(gateway: Gateway, caller: Caller, phones: str = ADAM, **options: Any) -> Job:
    return gateway.tts_job(caller, phones=phones, text="Adam, web server is down", **options)


def sms(gateway: Gateway, caller: Caller, phones: str = ADAM) -> Job:
    return gateway.sms_job(caller, phones=phones, group=None, text="server down")


def refusal(outcome: Outcome) -> int:
    """The status code of a refused job's outcome (fails when the job was accepted)."""
    assert not isinstance(outcome, list), f"accepted: {outcome}"
    return outcome.code


def stored(db: Database, outcome: Outcome) -> list[Message]:
    """The messages of an accepted job's outcome, read back (fails when the job was refused)."""
    assert isinstance(outcome, list), f"refused: {outcome!r}"
    with db.read() as session:
        found = [session.get(Message, submitted.message_id) for submitted in outcome]
        for message in found:
            if message is not None:
                session.expunge(message)  # its values stay readable after the read transaction
    assert all(message is not None for message in found)
    return [message for message in found if message is not None]


def money(db: Database, owner_id: int) -> tuple[int, int]:
    """(balance, full sum of the ledger) of an owner: write_jobs must keep them equal."""
    with db.read() as session:
        return ledger.balance(session, owner_id), ledger.full_sum(session, owner_id)


def reserves_of(db: Database, user_id: int) -> list[int]:
    with db.read() as session:
        query = select(LedgerEntry.amount).where(
            LedgerEntry.kind == "reserve", LedgerEntry.user_id == user_id
        )
        return sorted(session.scalars(query))


def new_owner(db: Database, hasher: PasswordHasher, username: str, balance: int) -> int:
    with db.transaction() as session:
        owner = accounts.create_account(session, username=username, password=PASSWORD, now=NOW, hasher=hasher)
        ledger.top_up(session, owner.id, balance, NOW)
        return owner.id


def change_account(db: Database, account_id: int, **change: Any) -> None:
    """Set a new password (`password=`), the active flag (`active=`) or the spending limit in the store."""
    hasher = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    with db.transaction() as session:
        row = session.get(Account, account_id)
        assert row is not None
        if "password" in change:
            accounts.set_password(session, row, change["password"], hasher)
        if "active" in change:
            accounts.set_active(session, row, change["active"])
        if "spending_limit" in change:
            row.spending_limit = change["spending_limit"]


# --- (a) several owners in one batch -----------------------------------------------------------------


def test_two_owners_and_a_subuser_each_reserve_from_their_own_owner(
    gateway: Gateway, db: Database, world: World
) -> None:
    owner = gateway.login(OWNER, PASSWORD)
    other = gateway.login(OTHER, PASSWORD)
    sub = gateway.login(SUBUSER, PASSWORD)
    jobs = [tts(gateway, owner), tts(gateway, other, f"{ADAM},{EVE}"), tts(gateway, sub), sms(gateway, owner)]
    outcomes = gateway.write_jobs(jobs)
    assert len(outcomes) == 4
    written = [stored(db, outcome) for outcome in outcomes]
    assert [[(m.account_id, m.user_id, m.status_code) for m in job] for job in written] == [
        [(world.owner.id, world.owner.id, 100)],
        [(world.other.id, world.other.id, 100), (world.other.id, world.other.id, 100)],
        [(world.owner.id, world.subuser.id, 100)],
        [(world.owner.id, world.owner.id, 100)],
    ]
    assert money(db, world.owner.id) == (BALANCE - 2 * TTS_RESERVE - SMS_RESERVE,) * 2
    assert money(db, world.other.id) == (BALANCE - 2 * TTS_RESERVE,) * 2
    assert reserves_of(db, world.subuser.id) == [-TTS_RESERVE]
    assert reserves_of(db, world.owner.id) == [-TTS_RESERVE, -SMS_RESERVE]
    assert len({m.job_id for job in written for m in job}) == 4  # one job id per job, not per batch


def test_an_empty_batch_writes_nothing(gateway: Gateway, db: Database, world: World) -> None:
    before = counts(db)
    assert gateway.write_jobs([]) == []
    assert counts(db) == before


# --- (b) the balance runs out inside a batch ----------------------------------------------------------


def test_jobs_after_the_balance_ran_out_are_refused_and_write_nothing(
    gateway: Gateway, db: Database, world: World, hasher: PasswordHasher
) -> None:
    owner_id = new_owner(db, hasher, "poor@hotmail.com", 2 * TTS_RESERVE + 50_000)
    caller = gateway.login("poor@hotmail.com", PASSWORD)
    rich = gateway.login(OWNER, PASSWORD)
    before = counts(db)
    jobs = [
        tts(gateway, caller),
        tts(gateway, rich),  # another owner's job between them is not affected
        tts(gateway, caller, EVE),
        tts(gateway, caller),  # 50_000 left: refused
        tts(gateway, caller, f"{ADAM},{EVE}"),  # refused whole, not one recipient of two
        sms(gateway, caller),  # a refusal held nothing: a cheaper job still fits
    ]
    outcomes = gateway.write_jobs(jobs)
    assert [100 if isinstance(o, list) else o.code for o in outcomes] == [100, 100, 100, 503, 503, 100]
    assert [o.status_text for o in outcomes if not isinstance(o, list)] == ["INSUFFICIENT BALANCE"] * 2
    accepted = [m for o in outcomes if isinstance(o, list) for m in stored(db, o)]
    after = counts(db)
    assert after["messages"] - before["messages"] == len(accepted) == 4
    assert after["ledger"] - before["ledger"] == 4  # one reservation per stored message
    assert after["money"] - before["money"] == -(3 * TTS_RESERVE + SMS_RESERVE)
    assert money(db, owner_id) == (50_000 - SMS_RESERVE,) * 2
    with db.read() as session:
        assert session.scalar(select(func.count()).where(Message.account_id == owner_id)) == 3


# --- (c) refusals of one job: no rate, no group -----------------------------------------------------


def test_a_job_without_a_rate_or_a_group_is_refused_alone(
    gateway: Gateway, db: Database, world: World
) -> None:
    owner = gateway.login(OWNER, PASSWORD)
    before = counts(db)
    jobs = [
        tts(gateway, owner),
        tts(gateway, owner, UK),  # prefix 44 has no TTS rate
        sms(gateway, owner, UK),  # ... but an SMS one
        tts(gateway, owner, f"{EVE},{UK}"),  # one unrated recipient refuses the whole job
        gateway.sms_job(owner, phones=None, group="No_Such_Group", text="hi"),
        gateway.sms_job(owner, phones=None, group="Test_Group", text="hi"),
    ]
    outcomes = gateway.write_jobs(jobs)
    codes = [refusal(o) if not isinstance(o, list) else [s.code for s in o] for o in outcomes]
    assert codes == [[100], 513, [100], 513, 500, [100, 100]]
    assert [type(o).__name__ for o in outcomes if not isinstance(o, list)] == [
        "NoRate",
        "NoRate",
        "GroupNotFound",
    ]
    group = stored(db, outcomes[5])
    assert sorted(m.phone for m in group) == sorted([ADAM, EVE])
    assert stored(db, outcomes[2])[0].rate == 40_000
    reserved = TTS_RESERVE + 40_000 + 2 * SMS_RESERVE
    after = counts(db)
    assert (after["messages"] - before["messages"], after["money"] - before["money"]) == (4, -reserved)
    assert money(db, world.owner.id) == (BALANCE - reserved,) * 2


# --- (d) logins re-checked in the write --------------------------------------------------------------


def test_a_password_changed_after_the_login_refuses_the_job(
    gateway: Gateway, db: Database, world: World
) -> None:
    verified = gateway.login(OWNER, PASSWORD, rechecked=True)  # reads the row: the snapshot
    change_account(db, world.owner.id, password=NEW_PASSWORD)
    stale = gateway.login(OWNER, PASSWORD, rechecked=True)  # the snapshot still holds the old hash
    assert stale == verified
    other = gateway.login(OTHER, PASSWORD, rechecked=True)
    before = counts(db)
    outcomes = gateway.write_jobs([tts(gateway, verified), tts(gateway, stale), tts(gateway, other)])
    assert [refusal(o) for o in outcomes[:2]] == [505, 505]
    assert len(stored(db, outcomes[2])) == 1  # the other login's job in the same batch went on
    after = counts(db)
    assert after["messages"] - before["messages"] == 1
    assert after["money"] - before["money"] == -TTS_RESERVE
    assert money(db, world.owner.id) == (BALANCE, BALANCE)
    with pytest.raises(WrongCredentials) as refused:
        gateway.login(OWNER, PASSWORD)  # a fresh read refuses the old password
    assert refused.value.code == 505


def test_a_stale_snapshot_still_accepts_the_new_password(
    gateway: Gateway, db: Database, world: World
) -> None:
    gateway.login(OWNER, PASSWORD, rechecked=True)
    change_account(db, world.owner.id, password=NEW_PASSWORD)
    caller = gateway.login(OWNER, NEW_PASSWORD, rechecked=True)  # refused by the snapshot, read again
    (submitted,) = gateway.submit(tts(gateway, caller))
    assert submitted.code == 100
    assert money(db, world.owner.id) == (BALANCE - TTS_RESERVE,) * 2
    again = gateway.login(OWNER, NEW_PASSWORD, rechecked=True)  # the fresh read became the snapshot
    assert again == caller and gateway.submit(tts(gateway, again))[0].code == 100


@pytest.mark.parametrize("disabled", ["self", "owner"])
def test_an_account_disabled_after_the_login_refuses_the_job(
    gateway: Gateway, db: Database, world: World, disabled: str
) -> None:
    username = OWNER if disabled == "self" else SUBUSER  # a sub-user is refused with its owner
    caller = gateway.login(username, PASSWORD, rechecked=True)
    change_account(db, world.owner.id, active=False)
    snapshot = gateway.login(username, PASSWORD, rechecked=True)
    before = counts(db)
    outcomes = gateway.write_jobs([tts(gateway, caller), sms(gateway, snapshot)])
    assert [refusal(o) for o in outcomes] == [506, 506]
    assert counts(db) == before
    with pytest.raises(AccountNotActive):
        gateway.login(username, PASSWORD)
    change_account(db, world.owner.id, active=True)
    assert gateway.submit(tts(gateway, gateway.login(username, PASSWORD)))[0].code == 100


def test_a_deleted_login_refuses_the_job(gateway: Gateway, db: Database, world: World) -> None:
    caller = gateway.login(SUBUSER, PASSWORD, rechecked=True)
    with db.transaction() as session:
        row = session.get(Account, world.subuser.id)
        assert row is not None
        session.delete(row)
    before = counts(db)
    (outcome,) = gateway.write_jobs([tts(gateway, caller)])
    assert refusal(outcome) == 505
    assert counts(db) == before


@pytest.mark.parametrize("alone", [False, True])
def test_a_deleted_owner_refuses_its_job_alone(
    gateway: Gateway, db: Database, world: World, hasher: PasswordHasher, alone: bool
) -> None:
    """Also when it is the only paying account of its batch (no owner left to lock)."""
    with db.transaction() as session:
        gone = accounts.create_account(
            session, username="gone@hotmail.com", password=PASSWORD, now=NOW, hasher=hasher
        )
    caller = gateway.login("gone@hotmail.com", PASSWORD, rechecked=True)
    with db.transaction() as session:
        row = session.get(Account, gone.id)
        assert row is not None
        session.delete(row)
    jobs = (
        [tts(gateway, caller)]
        if alone
        else [tts(gateway, caller), tts(gateway, gateway.login(OWNER, PASSWORD))]
    )
    before = counts(db)
    outcomes = gateway.write_jobs(jobs)
    assert refusal(outcomes[0]) == 505  # the login is gone: the answer of an unknown user
    if not alone:
        assert len(stored(db, outcomes[1])) == 1  # the other owner's job of the batch went on
    assert counts(db)["messages"] - before["messages"] == (0 if alone else 1)


def test_logins_without_a_stored_hash_are_not_rechecked(gateway: Gateway, db: Database, world: World) -> None:
    """An API key's Caller carries no credential: a password change does not concern it."""
    with db.transaction() as session:
        row = session.get(Account, world.owner.id)
        assert row is not None
        _, key = accounts.create_api_key(session, row, NOW, name="test")
    caller = gateway.login_api_key(key)
    assert caller.credential is None
    change_account(db, world.owner.id, password=NEW_PASSWORD)
    assert gateway.submit(tts(gateway, caller))[0].code == 100


# --- (e) a sub-user's spending limit across the jobs of a batch ------------------------------------


def test_a_subusers_spending_limit_holds_across_one_batch(
    gateway: Gateway, db: Database, world: World
) -> None:
    change_account(db, world.subuser.id, spending_limit=TTS_RESERVE + SMS_RESERVE)
    sub = gateway.login(SUBUSER, PASSWORD)
    owner = gateway.login(OWNER, PASSWORD)
    before = counts(db)
    jobs = [tts(gateway, sub), tts(gateway, sub, EVE), tts(gateway, owner, EVE), sms(gateway, sub)]
    outcomes = gateway.write_jobs(jobs)
    assert refusal(outcomes[1]) == 503
    assert [len(stored(db, outcomes[i])) for i in (0, 2, 3)] == [1, 1, 1]  # the limit is the sub-user's
    assert reserves_of(db, world.subuser.id) == [-TTS_RESERVE, -SMS_RESERVE]
    assert counts(db)["messages"] - before["messages"] == 3
    (next_batch,) = gateway.write_jobs([sms(gateway, sub)])  # what it spent before counts too
    assert refusal(next_batch) == 503


# --- (f) concurrent HTTP submissions through a real server ----------------------------------------


class LiveServer:
    """The app on a real uvicorn server in a thread, on a socket bound to 127.0.0.1 by us."""

    def __init__(self, settings: Settings, gateway: Gateway) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        host, port = self._sock.getsockname()
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(create_app(settings, gateway), log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]})

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            assert self._thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(20)
        self._sock.close()


@pytest.fixture
def live(settings: Settings, gateway: Gateway) -> Iterator[LiveServer]:
    with LiveServer(settings, gateway) as server:
        yield server
    gateway.close()


async def submit_many(url: str, forms: list[dict[str, Any]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return list(await asyncio.gather(*(client.post("/matrix_tts", data=form) for form in forms)))


def tts_form(index: int) -> dict[str, Any]:
    return account(phone="12506063167", txt=f"Adam, web server {index} is down")


def check_answers(responses: list[httpx.Response]) -> list[str]:
    """The message IDs of answers that must all be 200 / STATUSCODE 200."""
    assert [r.status_code for r in responses] == [200] * len(responses)
    answers = [one(r.text) for r in responses]
    assert [a["STATUSCODE"] for a in answers] == ["200"] * len(answers), answers
    return [a["ID"] for a in answers]


def queued_messages(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).where(Message.status_code == 100)) or 0)


REQUESTS = 60


def test_concurrent_submissions_are_all_stored_once(
    live: LiveServer, gateway: Gateway, db: Database, world: World
) -> None:
    ids = check_answers(asyncio.run(submit_many(live.url, [tts_form(i) for i in range(REQUESTS)])))
    assert len(set(ids)) == REQUESTS
    assert queued_messages(db) == REQUESTS
    assert money(db, world.owner.id) == (BALANCE - REQUESTS * TTS_RESERVE,) * 2
    assert gateway.group_commit.items == REQUESTS
    assert 1 <= gateway.group_commit.batches <= REQUESTS
    metrics = httpx.get(f"{live.url}/metrics").text  # what an operator sees of it
    assert f"ivrgate_submission_jobs_total {float(REQUESTS)}" in metrics
    assert f"ivrgate_submission_writes_total {float(gateway.group_commit.batches)}" in metrics


def test_submissions_arriving_during_a_write_share_one_transaction(
    live: LiveServer, gateway: Gateway, db: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner's row is held by another transaction (and, on SQLite, the gateway's writer lock), so
    the writes of the burst that began wait, and every later request queues behind them: once released,
    one more write takes all of those (each writer thread holds one batch at most)."""
    warm = check_answers(asyncio.run(submit_many(live.url, [tts_form(-1)])))  # argon2 and snapshot now
    commit = gateway._group_commit
    assert (commit.batches, commit.items) == (1, 1)
    sizes: list[int] = []
    write = commit._write

    def recording(jobs: Sequence[Job]) -> Sequence[list[Submitted] | BaseException]:
        sizes.append(len(jobs))
        return write(jobs)

    monkeypatch.setattr(commit, "_write", recording)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gateway._write() as session:
            ledger.lock_owner_id(session, world.owner.id)
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)

        async def scenario() -> tuple[list[httpx.Response], int]:
            sending = asyncio.create_task(submit_many(live.url, [tts_form(i) for i in range(REQUESTS)]))
            deadline = time.monotonic() + 20
            while sum(sizes) + len(commit._pending) < REQUESTS:  # every request in the group commit
                assert time.monotonic() < deadline and not sending.done(), (sizes, len(commit._pending))
                await asyncio.sleep(0.02)
            waiting = len(sizes)  # writes begun and held
            release.set()
            return await sending, waiting

        responses, waiting = asyncio.run(scenario())
        ids = check_answers(responses)
    finally:
        release.set()
        holder.join(30)
    assert 1 <= waiting <= getattr(commit, "_writers", 1)  # writer threads (PostgreSQL may have several)
    assert sum(sizes) == REQUESTS and len(sizes) <= waiting + 1, sizes
    assert len(set(ids + warm)) == REQUESTS + 1
    assert (commit.batches, commit.items) == (1 + len(sizes), REQUESTS + 1)
    assert queued_messages(db) == REQUESTS + 1
    assert money(db, world.owner.id) == (BALANCE - (REQUESTS + 1) * TTS_RESERVE,) * 2


# --- review follow-ups: one job's lookup failure, error precedence, large batches --------------------


class _PickyCarrier:
    """A carrier provider (failure injection) that cannot look up one number."""

    def __init__(self, broken: str) -> None:
        self.broken = broken

    def lookup(self, phone: str) -> Any:
        if phone == self.broken:
            raise InvalidPin(f"the lookup service refused {phone}")
        return CarrierInfo(phone, Country("US", "United States"), "", LineType.MOBILE, True)


def test_a_lookup_failure_while_drafting_refuses_its_job_alone(
    settings: Settings, db: Database, world: World
) -> None:
    gateway = Gateway(settings, db, now=lambda: NOW, carrier=_PickyCarrier(EVE))
    caller = gateway.login(OWNER, PASSWORD)
    fallback = gateway.sms_job(caller, phones=EVE, group=None, text="server down", tts_fallback=True)
    before = counts(db)
    first, second = gateway.write_jobs([fallback, sms(gateway, caller)])
    assert refusal(first) == 513
    assert [m.phone for m in stored(db, second)] == [ADAM]
    assert counts(db)["messages"] == before["messages"] + 1


def test_a_disabled_account_answers_506_before_its_forms_own_refusal(
    client: Any, gateway: Gateway, db: Database, world: World
) -> None:
    """A job is built on a recent read of the login; when building it fails, the credentials are read
    afresh first, so the documented precedence holds (505/506/404 before the form's error)."""
    ok = one(client.post("/matrix_tts", data=account(phone=ADAM, txt="hello")).text)
    assert ok["STATUSCODE"] == "200"  # the account row is now a recent read
    not_audio = {"voicefile": ("notes.wav", b"this is not audio at all" * 50, "audio/wav")}
    form = account(phone=ADAM)
    assert one(client.post("/matrix_voice", data=form, files=not_audio).text)["STATUSCODE"] != "506"
    change_account(db, world.owner.id, active=False)
    # the upload is refused only while the job is built, after the (recent) login read
    refused = one(client.post("/matrix_voice", data=form, files=not_audio).text)
    assert refused["STATUSCODE"] == "506"


def test_a_batch_larger_than_one_statements_parameters_is_priced_and_screened_in_chunks(
    gateway: Gateway, db: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import store.lists
    import store.rating

    monkeypatch.setattr(store.rating, "IN_LIST_MAX", 7)  # a few values per statement: many statements
    monkeypatch.setattr(store.lists, "IN_LIST_MAX", 7)
    caller = gateway.login(OWNER, PASSWORD)
    numbers = [f"+1250555{n:04d}" for n in range(30)]
    jobs = [sms(gateway, caller, ", ".join(numbers[i:i + 10])) for i in range(0, 30, 10)]
    outcomes = gateway.write_jobs([*jobs, sms(gateway, caller, DNC_PHONE), sms(gateway, caller, UK)])
    assert [len(stored(db, o)) for o in outcomes] == [10, 10, 10, 1, 1]
    assert [s.code for s in outcomes[3]] == [502]  # type: ignore[index]
    assert {m.rate for m in stored(db, outcomes[0])} == {SMS_RESERVE} and stored(db, outcomes[4])[0].rate > 0
