"""The login throttle: failed password logins per username and per source address, with exponential
back-off and an unlock by time, shared by every process through the store (the `login_failures` table).

    throttle.check(keys)       # BEFORE argon2: LoginThrottled (505, retry_after_s) while a key is locked
    throttle.failed(keys)      # a wrong password or unknown user: count it, lock when due
    throttle.succeeded(keys)   # the right password: the username's count starts again

`Gateway.login` is the one password login of every front (legacy, v1 Basic, the GUI, SMTP), so the
throttle sits there. A locked key refuses every password login for it, the right password too: the lock
is checked before the password, so a guess during a lock costs no argon2 and tells nothing. API keys are
not throttled (256 random bits cannot be guessed), so a user whose name is under attack keeps working
through them.

The rule (`lock_seconds`, pure): the `free`-th failure in a row locks a key for `first_lock_s`, each
failure after that (once the lock is over) for twice as long as the one before, at most `max_lock_s`.
A key whose last failure is older than `forget_after_s` starts again from 0; so does the username's key
after a successful login (never the address's: an attacker could clear its own address with an account
of its own).

A process keeps what it read of a key for `recheck_s` (a monotonic clock), so the hot legacy path reads
the table at most once a second per key; a lock written by another process is seen within that time.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from store import accounts
from store.db import upsert_insert
from store.errors import InvalidUsername, WrongCredentials
from store.models import LoginFailure

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 60.0
"""How often (at most) a process deletes rows whose failures are forgotten."""
MAX_KEY_CHARS = 300


@dataclass(frozen=True)
class ThrottleSettings:
    """The login throttle (api.core.settings nests it as `login_throttle`; docs/operations.md, "Security")."""

    enabled: bool = True
    user_free_failures: int = 5
    """Failed logins of one username before its first lock."""
    address_free_failures: int = 20
    """Failed logins from one source address (an IPv6 /64) before its first lock: more room, for offices
    behind one NAT address."""
    per_address: bool = True
    """Count per source address too. Behind a reverse proxy every client has the proxy's address: turn
    this off there (the username's count still holds)."""
    first_lock_s: float = 1.0
    max_lock_s: float = 900.0
    forget_after_s: float = 3600.0
    """A key whose last failure is this old starts again from 0."""
    recheck_s: float = 1.0
    """How long a process trusts its last read of a key (a lock set by another process shows after it)."""

    def __post_init__(self) -> None:
        if self.user_free_failures < 0 or self.address_free_failures < 0:
            raise ValueError("free failures must not be negative")
        if not 0 < self.first_lock_s <= self.max_lock_s:
            raise ValueError("first_lock_s must be positive and at most max_lock_s")
        if self.forget_after_s <= 0 or self.recheck_s < 0:
            raise ValueError("forget_after_s must be positive and recheck_s not negative")


class LoginThrottled(WrongCredentials):
    """505 all the same (the seed's answer to refused credentials), with the delay until the lock ends:
    v1 answers HTTP 429 with Retry-After, the legacy routes a Retry-After header, SMTP a 451."""

    http_status = 429

    def __init__(self, retry_after_s: int, detail: str = "") -> None:
        self.retry_after_s = retry_after_s
        super().__init__(detail or f"too many failed logins: try again in {retry_after_s} s")


def lock_seconds(failures: int, free: int, settings: ThrottleSettings) -> float:
    """How long a key is locked after its `failures`-th failure in a row (0: not locked): `free`
    failures lock it for first_lock_s, each one more doubles that, up to max_lock_s."""
    over = failures - free
    if over < 0 or failures <= 0:
        return 0.0
    if over > 64:  # 2**64 seconds is past any cap
        return settings.max_lock_s
    return float(min(settings.max_lock_s, settings.first_lock_s * 2**over))


@dataclass(frozen=True)
class Key:
    """One throttled key: `user:<username>` or `addr:<address>`, with its free failures."""

    name: str
    free: int
    user: bool


def user_key(username: str) -> str:
    try:
        name = accounts.normalise_username(username)
    except InvalidUsername:
        name = username.strip().lower()
    return f"user:{name}"[:MAX_KEY_CHARS]


def address_key(address: str) -> str:
    """An IPv4 address as it is; an IPv6 address as its /64 (one host has a whole /64 to choose from)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return f"addr:{address.strip()}"[:MAX_KEY_CHARS]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"addr:{ip.ipv4_mapped}"
        return f"addr:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"addr:{ip}"


@dataclass
class _Seen:
    failures: int
    last_failure_at: dt.datetime | None
    locked_until: dt.datetime | None
    fresh_until: float


class LoginThrottle:
    """The throttle over the store: `read` and `write` are the gateway's transactions (its database-error
    translation and SQLite writer lock), `before_io` raises when the caller may not touch the store now
    (api.core.service's NeedsThread on the event loop), `now` is the gateway's clock."""

    def __init__(
        self,
        settings: ThrottleSettings,
        read: Callable[[], AbstractContextManager[Session]],
        write: Callable[[], AbstractContextManager[Session]],
        now: Callable[[], dt.datetime],
        before_io: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self._read = read
        self._write = write
        self._now = now
        self._before_io = before_io
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()
        self._pruned_at = 0.0

    def keys(self, username: str, address: str | None) -> list[Key]:
        """The keys a login of `username` from `address` counts against."""
        if not self.settings.enabled:
            return []
        found = [Key(user_key(username), self.settings.user_free_failures, True)]
        if address and self.settings.per_address:
            found.append(Key(address_key(address), self.settings.address_free_failures, False))
        return found

    def check(self, keys: Sequence[Key]) -> None:
        """LoginThrottled while any of `keys` is locked (from the store, or this process's recent read)."""
        if not keys:
            return
        now = self._now()
        seen = self._current([key.name for key in keys])
        waits = [s.locked_until for s in seen.values() if s.locked_until is not None and s.locked_until > now]
        if waits:
            retry = max(1, math.ceil((max(waits) - now).total_seconds()))
            raise LoginThrottled(retry)

    def failed(self, keys: Sequence[Key]) -> None:
        """Count a failed login against `keys` (one write transaction), locking those past their allowance."""
        if not keys:
            return
        self._before_io()
        now = self._now()
        names = [key.name for key in keys]
        with self._write() as session:
            # a row for every key first (two processes may count a new key at once), then lock them
            new = [{"key": name, "failures": 0, "last_failure_at": now} for name in names]
            insert = upsert_insert(session)
            session.execute(insert(LoginFailure).values(new).on_conflict_do_nothing(index_elements=["key"]))
            query = select(LoginFailure).where(LoginFailure.key.in_(names)).order_by(LoginFailure.key)
            rows = {row.key: row for row in session.scalars(query.with_for_update())}
            for key in keys:
                row = rows[key.name]
                if self._forgotten(row.last_failure_at, now):
                    row.failures = 0
                row.failures += 1
                row.last_failure_at = now
                seconds = lock_seconds(row.failures, key.free, self.settings)
                row.locked_until = now + dt.timedelta(seconds=seconds) if seconds else None
                if seconds:
                    log.warning("login throttle: %s locked for %.0f s after %d failures",
                                key.name, seconds, row.failures)
            session.flush()
            self._remember(rows)
            self._prune(session, now)

    def succeeded(self, keys: Sequence[Key]) -> None:
        """A right password: the username's failures start again (only when it had any)."""
        users = [key.name for key in keys if key.user]
        if not users or not any(s.failures for s in self._current(users).values()):
            return
        self._before_io()
        with self._write() as session:
            session.execute(delete(LoginFailure).where(LoginFailure.key.in_(users)))
        with self._lock:
            for name in users:
                self._seen.pop(name, None)

    # --- this process's view -------------------------------------------------------------------------

    def _current(self, names: Sequence[str]) -> dict[str, _Seen]:
        clock = time.monotonic()
        with self._lock:
            found = {n: self._seen[n] for n in names if n in self._seen and self._seen[n].fresh_until > clock}
        missing = [name for name in names if name not in found]
        if missing:
            self._before_io()
            with self._read() as session:
                rows = {row.key: row for row in session.scalars(
                    select(LoginFailure).where(LoginFailure.key.in_(missing)))}
                read = self._remember(rows, missing)
            found.update(read)
        return found

    def _remember(self, rows: dict[str, LoginFailure], names: Sequence[str] = ()) -> dict[str, _Seen]:
        fresh = time.monotonic() + self.settings.recheck_s
        seen = {name: _Seen(0, None, None, fresh) for name in names}
        for name, row in rows.items():
            seen[name] = _Seen(row.failures, row.last_failure_at, row.locked_until, fresh)
        with self._lock:
            if len(self._seen) > 100_000:
                self._seen.clear()
            self._seen.update(seen)
        return seen

    def _forgotten(self, last: dt.datetime | None, now: dt.datetime) -> bool:
        return last is None or (now - last).total_seconds() > self.settings.forget_after_s

    def _prune(self, session: Session, now: dt.datetime) -> None:
        clock = time.monotonic()
        if clock - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = clock
        cutoff = now - dt.timedelta(seconds=self.settings.forget_after_s)
        session.execute(delete(LoginFailure).where(
            LoginFailure.last_failure_at < cutoff,
            (LoginFailure.locked_until.is_(None)) | (LoginFailure.locked_until < now)))

