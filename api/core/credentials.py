"""A cache of verified legacy credentials, so the legacy API is not bound by argon2's cost.

Legacy clients send username and password with every request; one argon2 verify costs about 90 ms here.
A success is remembered for a short TTL under HMAC(process key, username, password): the cache never
holds a password or a reusable hash of one, and a different password has a different key, so a wrong
password can never hit a cached success.

Every check still reads the stored hash (the service loads the account anyway) and a cached entry only
counts while that hash is unchanged: a password changed by another process or another machine retires
the entry at once, with no message between them. `invalidate(username)` drops a user's entries when this
process knows better (an account disabled, a user deleted).

Failures are remembered too, briefly, in their own bounded table: the same wrong pair sent again (a
client with an old password in its configuration, retrying) is refused without another argon2 run. That
cannot lock out the right password: its key differs, and after a password change the stored hash differs.
Guessing many different passwords is not slowed by this cache; rate limiting belongs to the front.

Time is an argument (`now`, seconds on any monotonic clock). The tables are guarded by a lock because
the API verifies from a thread pool; argon2 runs outside the lock.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

logger = logging.getLogger(__name__)

KEY_BYTES = 32

HashLookup = Callable[[str], str | None]
"""username -> the stored argon2 hash, or None when no such user can log in."""


@dataclass(frozen=True)
class CacheSettings:
    """Sizes and lifetimes of the credential cache (api.core.settings may nest it as `credentials`)."""

    ttl_s: float = 60.0
    """How long a verified pair is trusted without argon2 (while its stored hash is unchanged)."""
    max_entries: int = 10_000
    negative_ttl_s: float = 10.0
    """How long the same failing pair is refused without argon2."""
    max_negative_entries: int = 10_000

    def __post_init__(self) -> None:
        if self.ttl_s < 0 or self.negative_ttl_s < 0:
            raise ValueError("credential cache lifetimes must not be negative")
        if self.max_entries < 1 or self.max_negative_entries < 1:
            raise ValueError("credential cache sizes must be at least 1")


@dataclass
class _Entry:
    user_tag: bytes
    hash_digest: bytes
    expires: float


class _Table:
    """An LRU map of pair key -> entry with a per-user index, so one user's entries can be dropped."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._by_user: dict[bytes, set[bytes]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: bytes, entry: _Entry) -> None:
        self.discard(key)
        self._entries[key] = entry
        self._by_user.setdefault(entry.user_tag, set()).add(key)
        while len(self._entries) > self._capacity:
            self.discard(next(iter(self._entries)))

    def discard(self, key: bytes) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        keys = self._by_user.get(entry.user_tag)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_user[entry.user_tag]

    def discard_user(self, user_tag: bytes) -> None:
        for key in list(self._by_user.get(user_tag, ())):
            self.discard(key)

    def clear(self) -> None:
        self._entries.clear()
        self._by_user.clear()


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


class CredentialCache:
    """Verifies (username, password) against stored argon2 hashes, remembering recent answers."""

    def __init__(
        self, key: bytes, settings: CacheSettings | None = None, hasher: PasswordHasher | None = None
    ) -> None:
        if len(key) < 16:
            raise ValueError("the cache key must be at least 16 random bytes")
        self._key = key
        self._settings = settings or CacheSettings()
        self._hasher = hasher or PasswordHasher()
        self._good = _Table(self._settings.max_entries)
        self._bad = _Table(self._settings.max_negative_entries)
        self._lock = threading.Lock()
        self._dummy_hash: str | None = None
        self.argon2_runs = 0
        """How many argon2 verifies this cache ran (for metrics and tests)."""

    @classmethod
    def with_random_key(cls, settings: CacheSettings | None = None, **kwargs: Any) -> CredentialCache:
        """A cache keyed by fresh random bytes: what one process uses."""
        return cls(secrets.token_bytes(KEY_BYTES), settings, **kwargs)

    def verify(self, username: str, password: str, stored_hash_lookup: HashLookup, now: float) -> bool:
        """True when `password` is the user's password, by the cache or by one argon2 verify."""
        stored = stored_hash_lookup(username)
        pair_key, user_tag = self._pair_key(username, password), self._user_tag(username)
        digest = self._digest(stored)
        cached = self._cached(pair_key, digest, now)
        if cached is not None:
            return cached
        ok = stored is not None and self._argon2(stored, password)
        if stored is None:
            self._burn(password)
        self._remember(pair_key, _Entry(user_tag, digest, 0.0), ok, now)
        return ok

    def needs_rehash(self, stored: str) -> bool:
        """Whether `stored` was made with other argon2 parameters than this cache's hasher (argon2's
        `check_needs_rehash`; False for a hash that is not argon2's: verify() refuses those)."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return False

    def hash(self, password: str) -> str:
        """`password` hashed with this cache's argon2 parameters (the upgrade of an outdated hash)."""
        return self._hasher.hash(_encode(password))

    def invalidate(self, username: str) -> None:
        """Forget every answer about `username` (account disabled or deleted, password reset)."""
        tag = self._user_tag(username)
        with self._lock:
            self._good.discard_user(tag)
            self._bad.discard_user(tag)

    def clear(self) -> None:
        with self._lock:
            self._good.clear()
            self._bad.clear()

    def __len__(self) -> int:
        """Cached successes (failures are not counted)."""
        return len(self._good)

    def _cached(self, pair_key: bytes, digest: bytes, now: float) -> bool | None:
        with self._lock:
            for table, answer in ((self._good, True), (self._bad, False)):
                entry = table.get(pair_key)
                if entry is None:
                    continue
                if now < entry.expires and hmac.compare_digest(entry.hash_digest, digest):
                    return answer
                table.discard(pair_key)
        return None

    def _remember(self, pair_key: bytes, entry: _Entry, ok: bool, now: float) -> None:
        ttl = self._settings.ttl_s if ok else self._settings.negative_ttl_s
        entry.expires = now + ttl
        with self._lock:
            (self._bad if ok else self._good).discard(pair_key)
            if ttl > 0:
                (self._good if ok else self._bad).put(pair_key, entry)

    def _argon2(self, stored: str, password: str) -> bool:
        with self._lock:
            self.argon2_runs += 1
        try:
            return self._hasher.verify(stored, _encode(password))
        except VerifyMismatchError:
            return False
        except InvalidHashError:
            logger.error("stored password hash is not an argon2 hash; refusing the login")
            return False
        except VerificationError:
            return False

    def _burn(self, password: str) -> None:
        """Spend one verify on an unknown user too, so timing does not tell which usernames exist."""
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(self._key)
        self._argon2(self._dummy_hash, password)

    def _pair_key(self, username: str, password: str) -> bytes:
        user = _encode(username)
        message = len(user).to_bytes(4, "big") + user + _encode(password)
        return hmac.new(self._key, b"pair\x00" + message, hashlib.sha256).digest()

    def _user_tag(self, username: str) -> bytes:
        return hmac.new(self._key, b"user\x00" + _encode(username), hashlib.sha256).digest()

    def _digest(self, stored: str | None) -> bytes:
        if stored is None:
            return b"\x00" * 32
        return hmac.new(self._key, b"hash\x00" + _encode(stored), hashlib.sha256).digest()
