"""Writing submissions: many jobs in ONE transaction (the group commit's write, docs/store.md).

JobWriter.write_jobs re-reads the legacy logins, reads recipients, do-not-call entries and prices for
the whole batch, locks the paying accounts in id order, reserves each job's money from its owner's
purse (all or nothing: a refusal touches no other job), and writes messages, events and ledger entries
in a few statements; a PostgreSQL deadlock victim runs again; the worker is woken after the commit."""

from __future__ import annotations

import copy
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from api.core import idempotency
from api.core.errors import GroupNotFound, TooManyRecipients
from api.core.jobs import ACCOUNTS, LOGIN_ROWS_BY_ID, Caller, Claim, Draft, Job, Submitted, row_caller
from api.core.settings import Settings
from coded.errors import CodedError
from coded.statuses import DO_NOT_CALL
from store import blobs, ledger, lists, queue, rating
from store.db import retrying
from store.errors import AccountNotFound, StoreError, WrongCredentials
from store.models import MessageKind

log = logging.getLogger(__name__)

PRUNE_KEYS_EVERY_S = 3600.0
"""How often (at most) a writer deletes expired idempotency keys."""
Outcome = list[Submitted] | CodedError
"""A job's outcome: its recipients' answers, or its refusal."""


class JobWriter:
    """Writes validated jobs (api.core.service.Gateway builds them) through `write`, the gateway's write
    transaction (its SQLite writer lock and database-error translation)."""

    def __init__(
        self,
        settings: Settings,
        write: Callable[[], AbstractContextManager[Session]],
        now: Callable[[], dt.datetime],
        wake: Callable[[], None] | None,
    ) -> None:
        self.settings = settings
        self._write = write
        self.now = now
        self._wake = wake
        self._pruned_at = time.monotonic()

    def _recipients(self, session: Session, job: Job) -> list[str]:
        phones = list(job.phones)
        if job.group is not None:
            members = lists.group_phones(session, job.caller.owner_id, job.group)
            if not members:
                raise GroupNotFound(f"no group {job.group[:40]!r} with members")
            phones = list(dict.fromkeys([*phones, *members]))
        limit = self.settings.phones.max_recipients
        if len(phones) > limit:
            raise TooManyRecipients(f"{len(phones)} recipients, more than {limit}")
        return phones

    def write_jobs(self, jobs: Sequence[Job]) -> list[list[Submitted] | CodedError]:
        """Write `jobs` in ONE transaction (the group commit of `submit_async`), each all or nothing: an
        outcome per job, in order, its Submitted list or the refusal it raises (GroupNotFound, 503, 513,
        ...) without touching the others. The logins are re-read, recipients, do-not-call entries and
        prices read for the whole batch; then the owner rows are locked, in id order, each owner's balance
        read once and its jobs reserve from it in turn; all messages, events and ledger entries go in a
        few statements. A database failure fails them all (raised); a PostgreSQL deadlock or serialization
        failure runs the transaction again first (store.db.retrying). Wakes the worker after the commit."""
        accepted, outcomes = retrying(lambda: self._write_jobs_once(jobs))
        self._after_commit(accepted)
        return outcomes

    def _write_jobs_once(
        self, jobs: Sequence[Job]
    ) -> tuple[list[tuple[Job, queue.MessageRows]], list[list[Submitted] | CodedError]]:
        now = self.now()
        outcomes: list[list[Submitted] | CodedError | None] = [None] * len(jobs)
        recipients: list[list[str]] = [[] for _ in jobs]
        drafts: list[dict[str, Draft]] = [{} for _ in jobs]
        accepted: list[tuple[Job, queue.MessageRows]] = []
        with self._write() as session:
            conn = session.connection()  # one Core connection for the whole path (docs/store.md)
            callers = current_callers(conn, jobs)
            for index, job in enumerate(jobs):
                try:
                    _still_valid(job.caller, callers)
                    recipients[index] = self._recipients(session, job)
                    drafts[index] = {phone: job.draft(phone) for phone in recipients[index]}
                except CodedError as exc:
                    outcomes[index] = _refusal(exc)
                    recipients[index] = []
            repeats = self._claim_keys(conn, jobs, outcomes, now)
            blocked = self._blocked(conn, jobs, recipients)
            priced = self._prices(conn, drafts)
            # the owner locks as late as possible (with POSTGRESQL_WRITERS > 1 the reads above overlap
            # another writer's locked part); on SQLite BEGIN IMMEDIATE already serialises the writers
            owners = self._lock_owners(conn, jobs)
            batch = _Batch(conn, owners, blocked, priced, now)
            for index, job in enumerate(jobs):
                if outcomes[index] is not None or repeats.get(index, index) != index:
                    continue
                try:
                    rows = self._rows(batch, job, recipients[index], drafts[index])
                except CodedError as exc:
                    outcomes[index] = _refusal(exc)
                    continue
                accepted.append((job, rows))
                outcomes[index] = _submitted(rows)
            self._settle_keys(conn, jobs, outcomes, repeats)
            for job, _ in accepted:
                for data, media, origin in job.audio:
                    blobs.put_blob(session, data, now, media, origin)
            session.flush()  # the blobs before the Core inserts that refer to them
            queue.insert_rows(conn, [rows for _, rows in accepted])
            purses = [owner[0] for owner in owners.values() if not isinstance(owner, StoreError)]
            ledger.write_purses(conn, purses, now)
        done = [outcome for outcome in outcomes if outcome is not None]
        assert len(done) == len(jobs), "every job has an outcome"
        return accepted, done

    def _claim_keys(
        self, conn: Connection, jobs: Sequence[Job], outcomes: list[Outcome | None], now: dt.datetime
    ) -> dict[int, int]:
        """Claim the idempotency key of every keyed job still standing (api.core.idempotency.claim, in key
        order so two writers lock alike); a key answered before sets the job's outcome (Replayed, or
        IdempotencyConflict). Returns {index: index of the job that claimed it} for every job whose key
        this write holds (a claiming job maps to itself, a repeat within the batch to the first)."""
        first: dict[tuple[int, str], int] = {}
        repeats: dict[int, int] = {}
        keyed = [i for i, job in enumerate(jobs) if job.idempotency is not None and outcomes[i] is None]
        keyed.sort(key=lambda i: (jobs[i].caller.user_id, _claim_of(jobs[i]).key))
        ttl = self.settings.idempotency.ttl_s
        for index in keyed:
            job, claim = jobs[index], _claim_of(jobs[index])
            ident = (job.caller.user_id, claim.key)
            if ident in first:
                repeats[index] = first[ident]
                continue
            try:
                earlier = idempotency.claim(conn, job.caller.user_id, claim, now, ttl)
            except idempotency.IdempotencyConflict as exc:
                outcomes[index] = exc
                continue
            if earlier is not None:  # answered by an earlier submission: this write holds no claim for it
                outcomes[index] = earlier
                continue
            first[ident] = repeats[index] = index
        if keyed and time.monotonic() - self._pruned_at > PRUNE_KEYS_EVERY_S:
            self._pruned_at = time.monotonic()
            idempotency.prune(conn, now)
        return repeats

    def _settle_keys(
        self, conn: Connection, jobs: Sequence[Job], outcomes: list[Outcome | None], repeats: dict[int, int]
    ) -> None:
        """Keep the answer of every key this write claimed (or release the claim of a refused job), and
        answer the batch's repeats as the job that claimed their key was answered."""
        for index in {holder for holder in repeats.values()}:
            job, outcome = jobs[index], outcomes[index]
            if isinstance(outcome, list):
                idempotency.keep(conn, job.caller.user_id, _claim_of(job), outcome)
            else:
                idempotency.release(conn, job.caller.user_id, _claim_of(job))
        for index, first in repeats.items():
            if index == first:
                continue
            outcome = outcomes[first]
            if _claim_of(jobs[index]).request_hash != _claim_of(jobs[first]).request_hash:
                outcomes[index] = idempotency.IdempotencyConflict("the idempotency key was used for another "
                                                                  "request")
            elif isinstance(outcome, list):
                outcomes[index] = idempotency.Replayed(outcome)
            else:
                outcomes[index] = copy.copy(outcome)  # its own instance: one raised in many requests

    def _after_commit(self, accepted: Sequence[tuple[Job, queue.MessageRows]]) -> None:
        """Log the committed jobs and wake the worker: what fails here is logged, never raised (the jobs
        are in the store and their callers must hear so)."""
        queued = 0
        for job, rows in accepted:
            done = sum(1 for m in rows.created if m.queued)
            queued += done
            log.info("job %s of %s: %d queued, %d refused", rows.job_id, job.caller.username, done,
                     len(rows.created) - done)
        if queued and self._wake is not None:
            try:
                self._wake()
            except Exception:
                log.exception("waking the worker failed; it finds the jobs at its next poll")

    def _lock_owners(self, conn: Connection, jobs: Sequence[Job]) -> dict[int, _Owner | StoreError]:
        """Lock every paying account of the batch (one statement, in id order) and open its purse on a
        tally read for all of them at once: (purse, the owner's spending limit), or AccountNotFound."""
        wanted = sorted({job.caller.owner_id for job in jobs})
        limits = ledger.lock_owner_ids(conn, wanted)
        read = ledger.tallies(conn, list(limits))
        return {
            owner_id: (ledger.Purse(conn, owner_id, read[owner_id]), limits[owner_id])
            if owner_id in limits
            else AccountNotFound(f"account {owner_id}")
            for owner_id in wanted
        }

    def _blocked(
        self, conn: Connection, jobs: Sequence[Job], recipients: Sequence[list[str]]
    ) -> dict[int, set[str]]:
        """Do-not-call numbers among the recipients, per paying account (one statement for the batch)."""
        owners = {job.caller.owner_id for job in jobs}
        phones = {phone for numbers in recipients for phone in numbers}
        return lists.blocked_for(conn, owners, phones)

    @staticmethod
    def _prices(
        conn: Connection, drafts: Sequence[dict[str, Draft]]
    ) -> dict[str, dict[str, tuple[int, str] | None]]:
        """The price of every recipient, per message kind: one statement per kind for the whole batch."""
        kinds: dict[str, set[str]] = {}
        for job_drafts in drafts:
            for phone, draft in job_drafts.items():
                kinds.setdefault(draft.kind, set()).add(phone)
        return {kind: rating.lookup_prices(conn, sorted(phones), kind) for kind, phones in kinds.items()}

    def _rows(
        self, batch: _Batch, job: Job, phones: list[str], drafts: dict[str, Draft]
    ) -> queue.MessageRows:
        """One job's message rows, its reservation held in its owner's purse (nothing held if refused)."""
        caller = job.caller
        purse, limit = _purse_of(batch.owners, job)
        if caller.user_id != caller.owner_id:
            limit = self._user_limit(batch.conn, caller)
        specs = self._specs(job, phones, drafts, batch.blocked.get(caller.owner_id, set()), batch.priced)
        rows = queue.message_rows(caller.owner_id, caller.user_id, specs, batch.now)
        purse.take(caller.user_id, limit, [(m.id, m.reserved) for m in rows.created if m.queued])
        return rows

    def _user_limit(self, conn: Connection, caller: Caller) -> int | None:
        """A sub-user's spending limit (AccountNotFound when the login is gone)."""
        query = select(ACCOUNTS.c.spending_limit).where(ACCOUNTS.c.id == caller.user_id)
        row = conn.execute(query).first()
        if row is None:
            raise AccountNotFound(f"account {caller.user_id} is gone")
        return None if row.spending_limit is None else int(row.spending_limit)

    def _specs(
        self,
        job: Job,
        phones: list[str],
        drafts: dict[str, Draft],
        blocked: set[str],
        priced: dict[str, dict[str, tuple[int, str] | None]],
    ) -> list[queue.NewMessage]:
        """One message per recipient: do-not-call ones refused (502), the others priced (NoRate, 513,
        for the first recipient no rate covers)."""
        job_id = queue.new_message_id()
        specs = []
        for phone in phones:
            draft = drafts[phone]
            spec = queue.NewMessage(
                kind=draft.kind,
                phone=phone,
                job_id=job_id,
                callerid=draft.callerid or "",
                body=draft.body,
                settings=draft.settings,
                prompt_blob=draft.blob,
                parts=draft.parts,
                callback_url=job.callback_url,
            )
            if phone in blocked:
                specs.append(replace(spec, status=DO_NOT_CALL))
                continue
            price = rating.covered(priced[draft.kind], phone, draft.kind)
            reserved = self._reservation(draft, price[0])
            specs.append(replace(spec, rate=price[0], currency=price[1], reserved=reserved))
        return specs

    def _reservation(self, draft: Draft, price: int) -> int:
        if draft.kind == MessageKind.SMS:
            return rating.sms_cost(draft.parts, price)
        max_call = self.settings.dialer.max_call_s
        return rating.call_cost(max_call, price, self.settings.store.billing_increment_s)



_Owner = tuple[ledger.Purse, int | None]
"""A locked paying account in a write: its purse and its spending limit."""


@dataclass(frozen=True)
class _Batch:
    """What write_jobs() read once for all its jobs."""

    conn: Connection
    owners: dict[int, _Owner | StoreError]
    blocked: dict[int, set[str]]
    """Do-not-call recipients per paying account."""
    priced: dict[str, dict[str, tuple[int, str] | None]]
    """Per message kind: each recipient's (unit price, currency), None when no rate covers it."""
    now: dt.datetime


def current_callers(conn: Connection, jobs: Sequence[Job]) -> dict[int, Caller | CodedError]:
    """What the logins of `jobs` are now, read in the write (one statement): the Caller or the refusal
    (_row_caller) of every account a legacy login verified."""
    ids = sorted({job.caller.user_id for job in jobs if job.caller.credential is not None})
    if not ids:
        return {}
    rows = conn.execute(LOGIN_ROWS_BY_ID, {"ids": ids})
    return {row.id: row_caller(row) for row in rows}


def _still_valid(caller: Caller, current: dict[int, Caller | CodedError]) -> None:
    """Refuse a job whose login changed since it was verified: the password (505), the account disabled
    (506) or gone (505), its owner gone (404) or moved."""
    if caller.credential is None:
        return
    now = current.get(caller.user_id)
    if isinstance(now, CodedError):  # a new one per job: one instance raised in many requests
        raise type(now)(now.detail)  # would gather all their tracebacks
    if now is None or now.credential != caller.credential:
        raise WrongCredentials(f"the login of {caller.username[:60]!r} changed")
    if (now.owner_id, now.role) != (caller.owner_id, caller.role):
        raise AccountNotFound(f"account {caller.user_id} changed hands")


def _claim_of(job: Job) -> Claim:
    assert job.idempotency is not None
    return job.idempotency


def _submitted(rows: queue.MessageRows) -> list[Submitted]:
    return [Submitted(m.id, m.phone, m.status_code, m.status_text) for m in rows.created]


def _purse_of(owners: dict[int, _Owner | StoreError], job: Job) -> _Owner:
    """The job's locked owner, or its refusal raised (AccountNotFound: a new one per job)."""
    owner = owners[job.caller.owner_id]
    if isinstance(owner, StoreError):
        raise type(owner)(owner.detail)
    return owner


def _refusal(exc: CodedError) -> CodedError:
    """One job's refusal to report; a driver failure the store wrapped fails the whole write (raised)."""
    if type(exc) is StoreError:
        raise exc
    return exc


