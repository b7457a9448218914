"""The status-callback sender: drains the store's outbox and POSTs each row's JSON to its URL, signed.

A message's final status (and an incoming SMS webhook) is written to `store.outbox` in the transaction
that produced it; this sender delivers it at least once:

1. `claim_due()` takes due rows and hides them for a lease (a sender that dies leaves them to come due).
2. Each row is POSTed outside any transaction: the exact stored body, `Content-Type: application/json`
   (status callbacks) or `application/x-www-form-urlencoded` (incoming-SMS webhooks, the seed's form),
   and `X-Ivrgate-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw body under the account's secret.
   Rows are posted concurrently: at most `max_concurrent` at once, and at most `max_per_destination` to
   one destination (scheme, host and port), so a receiver that hangs holds only its own callbacks back.
   A row is claimed only when a slot for its destination is free (rows to busy destinations are left
   in the store, due), so nothing waits in memory while its lease runs out.
3. A 2xx answer marks the row delivered; anything else (another status, a refused address, a timeout,
   a connection error) records the error and schedules the next try by `store.outbox.backoff()`; after
   `max_attempts` the row stays undelivered, with its last error, and is never due again. Redirects are
   not followed (a 3xx is a failure): a callback URL should name its endpoint.

The settings, the signature and each account's secret are api.core.signing's (the v1 API shows the same
secret to the client).

The URL is the client's choice, so connections go through ivr.fetch's GuardedTransport: private,
loopback and link-local addresses are refused (unless allowed) when resolved and again at connect time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import httpx

from api.core.signing import SIGNATURE_HEADER, CallbackSecrets, CallbackSettings, sign
from ivr.errors import FetchError, UrlRefused
from ivr.fetch import AddressPolicy, GuardedTransport, check_url, deadline
from ivr.settings import FetchSettings
from store import outbox
from store.clock import utc_now
from store.db import Database
from store.lease import Leases, heartbeat_interval
from store.models import OutboxItem

log = logging.getLogger(__name__)

DELIVERY_HEADER = "X-Ivrgate-Delivery"
"""The outbox row id: the same on every retry of one callback, so a receiver can drop duplicates."""
MAX_ERROR_CHARS = 300
STOP_GRACE_S = 5.0
"""How much longer than one POST's limit stop() waits for the sender thread."""


# --- sending -------------------------------------------------------------------------------------------


@dataclass
class SendReport:
    """What one pass over the due rows did."""

    delivered: int = 0
    retrying: int = 0
    gave_up: int = 0
    lost: int = 0
    """Posted after another sender had claimed the row again (its lease lost): the result not recorded."""

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.gave_up + self.lost

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


class Slots:
    """How many callbacks are in flight, in all and per destination, against the two limits (pure)."""

    def __init__(self, total: int, per_destination: int) -> None:
        self.total = total
        self.per_destination = per_destination
        self._in_flight: dict[str, int] = {}

    @property
    def in_flight(self) -> int:
        return sum(self._in_flight.values())

    @property
    def free(self) -> int:
        """Callbacks that may start now (to destinations that are not busy)."""
        return self.total - self.in_flight

    def busy(self) -> frozenset[str]:
        """The destinations at their limit: no callback to them may start now."""
        return frozenset(dest for dest, count in self._in_flight.items() if count >= self.per_destination)

    def take(self, dest: str) -> bool:
        """Start one callback to `dest` if both limits allow it."""
        if self.free <= 0 or self._in_flight.get(dest, 0) >= self.per_destination:
            return False
        self._in_flight[dest] = self._in_flight.get(dest, 0) + 1
        return True

    def give_back(self, dest: str) -> None:
        """One callback to `dest` has ended."""
        left = self._in_flight.get(dest, 0) - 1
        if left > 0:
            self._in_flight[dest] = left
        else:
            self._in_flight.pop(dest, None)


class PermanentFailure(Exception):
    """A callback that can never succeed as it stands (a malformed or refused URL): not retried."""


class CallbackSender:
    """Delivers due outbox rows (module docstring), concurrently within the limits of its settings.
    One instance per process; `run()` in one thread, which hands the POSTs to a pool of threads."""

    def __init__(
        self,
        db: Database,
        secrets_: CallbackSecrets,
        settings: CallbackSettings | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        now: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.settings = settings or CallbackSettings()
        self._db = db
        self._secrets = secrets_
        self._now = now
        policy = AddressPolicy(
            FetchSettings(
                allow_private=self.settings.allow_private, allowed_networks=self.settings.allowed_networks
            )
        )
        self._client = httpx.Client(
            transport=transport or GuardedTransport(policy),
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(self.settings.total_timeout_s, connect=self.settings.connect_timeout_s),
            headers={"User-Agent": self.settings.user_agent},
            limits=httpx.Limits(max_connections=self.settings.max_concurrent),
        )
        self._pool = ThreadPoolExecutor(self.settings.max_concurrent, thread_name_prefix="callback-post")
        self._leases: Leases[outbox.Claim] = Leases(f"callback sender {os.getpid()}", "callback")
        """The claims being posted (store.lease): renewed by run()'s heartbeat; a lost one is not recorded."""
        self._heartbeat_s = heartbeat_interval(self.settings.lease_s, self.settings.heartbeat_s)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    def __enter__(self) -> CallbackSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_due(self, now: dt.datetime | None = None, *, stop: threading.Event | None = None) -> SendReport:
        """Claim the rows due at `now` (default: the clock), up to `batch`, POST them concurrently within
        the limits and record each result; returns when all of them have ended.

        Once `stop` is set no further row is claimed; the POSTs in flight finish."""
        now = now or self._now()
        report = SendReport()
        slots = Slots(self.settings.max_concurrent, self.settings.max_per_destination)
        in_flight: dict[Future[str], str] = {}
        claimed = 0
        while True:
            if stop is None or not stop.is_set():
                claimed += self._start_due(now, slots, in_flight, self.settings.batch - claimed)
            if not in_flight:
                return report
            self._collect(in_flight, slots, report, timeout=None)

    def _start_due(self, now: dt.datetime, slots: Slots, in_flight: dict[Future[str], str], most: int) -> int:
        """Claim and start due rows while slots are free, one claim each (so rows to busy destinations
        stay in the store); how many were started."""
        started = 0
        while started < most and slots.free > 0:
            with self._db.transaction() as session:
                items = outbox.claim_due(session, now, self.settings.lease_s, 1, exclude=slots.busy())
            if not items:
                return started
            dest = outbox.destination(items[0].url)
            if not slots.take(dest):  # a spelling of a busy destination the SQL filter did not catch
                with self._db.transaction() as session:
                    outbox.release(session, items[0].id, now)
                return started
            self._leases.hold(outbox.claim_of(items[0]), _posting_on)
            in_flight[self._pool.submit(self._deliver, items[0])] = dest
            started += 1
        return started

    def _collect(self, in_flight: dict[Future[str], str], slots: Slots, report: SendReport,
                 timeout: float | None) -> None:
        """Wait up to `timeout` for a POST to end; count every ended one and free its slot."""
        done, _ = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            slots.give_back(in_flight.pop(future))
            try:
                report.add(future.result())
            except Exception:
                log.exception("recording a callback failed (it comes due again after its lease)")

    def _deliver(self, item: OutboxItem) -> str:
        """POST one row and record the result (in this pool thread); the SendReport field to count."""
        return self._record(item, self._attempt(item))

    def _attempt(self, item: OutboxItem) -> str | PermanentFailure | None:
        """None when delivered; else the error (a PermanentFailure is not retried)."""
        try:
            self.post(item)
        except PermanentFailure as exc:
            return exc
        except UrlRefused as exc:
            return PermanentFailure(str(exc))
        except (httpx.HTTPError, FetchError) as exc:
            return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        except _HttpStatus as exc:
            return str(exc)
        return None

    def post(self, item: OutboxItem) -> None:
        """POST one row's body; returns on a 2xx answer, raises otherwise."""
        body = item.body.encode()
        media = "application/x-www-form-urlencoded" if item.kind == outbox.WEBHOOK else "application/json"
        headers = {"Content-Type": media, DELIVERY_HEADER: str(item.id)}
        if item.secret_ref:
            headers[SIGNATURE_HEADER] = sign(self._secrets.for_ref(item.secret_ref), body)
        url = _checked_url(item.url)
        # the total deadline bounds every read, so a receiver trickling its answer cannot hold the
        # sender past total_timeout_s
        with (
            deadline(self.settings.total_timeout_s),
            self._client.stream("POST", url, content=body, headers=headers) as response,
        ):
            if not response.is_success:
                raise _HttpStatus(f"HTTP {response.status_code} {response.reason_phrase}"[:MAX_ERROR_CHARS])

    def _record(self, item: OutboxItem, error: str | PermanentFailure | None) -> str:
        """Write the result of this claim of `item`, unless another sender has claimed it since."""
        now = self._now()
        self._leases.drop(outbox.claim_of(item))
        with self._db.transaction() as session:
            if error is None:
                if outbox.delivered(session, item.id, now, attempt=item.attempts):
                    return "delivered"
                return _lost(item, "delivered")
            limit = item.attempts if isinstance(error, PermanentFailure) else self.settings.max_attempts
            if not outbox.holds(session, outbox.claim_of(item)):
                return _lost(item, str(error))
            if outbox.failed(session, item.id, now, str(error), max_attempts=limit, attempt=item.attempts):
                log.info("callback %d to %s failed (attempt %d): %s", item.id, item.url, item.attempts, error)
                return "retrying"
            log.warning("callback %d to %s given up: %s", item.id, item.url, error)
            return "gave_up"

    def run(self, stop: threading.Event) -> None:
        """Send due callbacks until `stop` is set: a row is started as soon as it is due and a slot for its
        destination is free, whatever else is in flight. The leases of the rows being posted are renewed
        every `heartbeat_s` (store.lease). At the end the POSTs in flight finish."""
        slots = Slots(self.settings.max_concurrent, self.settings.max_per_destination)
        in_flight: dict[Future[str], str] = {}
        report = SendReport()
        wait_s = min(self.settings.poll_interval_s, self._heartbeat_s)
        next_beat = time.monotonic() + self._heartbeat_s
        while not stop.is_set() or in_flight:
            if not stop.is_set():
                try:
                    self._start_due(self._now(), slots, in_flight, self.settings.max_concurrent)
                except Exception:
                    log.exception("claiming callbacks failed")
            if in_flight:
                self._collect(in_flight, slots, report, timeout=wait_s)
            else:
                stop.wait(self.settings.poll_interval_s)
            if time.monotonic() >= next_beat:
                self._leases.beat(self._renew)
                next_beat = time.monotonic() + self._heartbeat_s

    def _renew(self, claims: list[outbox.Claim]) -> set[outbox.Claim]:
        with self._db.transaction() as session:
            return outbox.renew(session, claims, self._now(), self.settings.lease_s)


def _posting_on() -> None:
    """A callback's lost lease: its POST (in a pool thread) runs to its end, bounded by total_timeout_s;
    its result is then not recorded (`_record`), the other sender's is."""


def _lost(item: OutboxItem, result: str) -> str:
    log.warning("callback %d to %s: claimed again by another sender meanwhile; this attempt's result (%s) "
                "is not recorded", item.id, item.url, result[:MAX_ERROR_CHARS])
    return "lost"


class _HttpStatus(Exception):
    """The receiver answered, but not with 2xx."""


def _checked_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url.strip())
        check_url(parsed)
    except (httpx.InvalidURL, TypeError) as exc:
        raise PermanentFailure(f"invalid callback URL: {exc}") from None
    except FetchError as exc:
        raise PermanentFailure(str(exc)) from None
    return parsed


class CallbackThread:
    """A CallbackSender running in a thread of its own, as `ivrgate serve` and `ivrgate worker` run it.

        sender = CallbackThread(db, settings.callbacks, settings.data_dir)
        sender.start()
        ...
        sender.stop()          # after the POSTs in flight (at most total_timeout_s); joins the thread

    Every node may run one: rows are claimed with a lease, so two senders never post the same row at
    the same time."""

    def __init__(self, db: Database, settings: CallbackSettings, data_dir: Path, *,
                 secrets_: CallbackSecrets | None = None) -> None:
        self.settings = settings
        self.secrets = secrets_ or CallbackSecrets.load(settings, data_dir)
        """The signing secrets (the API's /v1/callbacks/secret must use the same)."""
        self.sender = CallbackSender(db, self.secrets, settings)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start sending in a daemon thread (once)."""
        if self._thread is not None:
            raise RuntimeError("the callback sender was already started")
        self._thread = threading.Thread(target=self._run, name="callback-sender", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        log.info("callback sender started")
        try:
            self.sender.run(self._stop)
        finally:
            log.info("callback sender stopped")

    def stop(self) -> None:
        """Stop after the POST in flight, join the thread and close the HTTP client. Blocks up to
        `total_timeout_s` (run it off an event loop)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(self.settings.total_timeout_s + STOP_GRACE_S)
            if thread.is_alive():
                log.error("the callback sender did not stop within %.0f s", self.settings.total_timeout_s)
                return
        self.sender.close()


@contextlib.asynccontextmanager
async def sending_callbacks(db: Database, settings: CallbackSettings, data_dir: Path, *,
                            secrets_: CallbackSecrets | None = None) -> AsyncIterator[CallbackThread]:
    """Run a CallbackThread for the length of the block (an app's lifespan, `ivrgate worker`); on exit
    stop it without blocking the event loop."""
    thread = CallbackThread(db, settings, data_dir, secrets_=secrets_)
    thread.start()
    try:
        yield thread
    finally:
        await asyncio.to_thread(thread.stop)
