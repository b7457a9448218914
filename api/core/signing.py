"""Status callbacks' settings and signatures: what the callback sender (api.runtime.callbacks) signs
with and what v1 shows a client (GET /v1/callbacks/secret), in one place.

Every POST carries `X-Ivrgate-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw body under the
account's secret. Where the secret lives: no column. Each account's secret is derived, HMAC-SHA256(master
key, `secret_ref`), from one master key (`CallbackSettings.secret`, or a random key kept in
`<data_dir>/callback.key` when that is empty), so every node that shares the master key signs alike and
rotating the master key rotates every account's secret.

    secrets = CallbackSecrets.load(CallbackSettings(), Path("/var/lib/ivrgate"))
    assert verify(secrets.for_account(7), body, sign(secrets.for_account(7), body))
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from store import outbox
from store.lease import heartbeat_interval

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Ivrgate-Signature"
SIGNATURE_SCHEME = "sha256"
KEY_FILE = "callback.key"


@dataclass(frozen=True)
class CallbackSettings:
    """How status callbacks are sent (api.core.settings may nest it as `callbacks`)."""

    secret: str = ""
    """The master key every account's signing secret is derived from; empty: a random key kept in
    <data_dir>/callback.key (nodes sharing a PostgreSQL store must share this setting instead)."""
    connect_timeout_s: float = 5.0
    total_timeout_s: float = 10.0
    """Longest one POST may take, connect to last byte of the answer's head."""
    max_attempts: int = outbox.MAX_ATTEMPTS
    batch: int = 50
    """Rows claimed at a time."""
    lease_s: float = 120.0
    """How long a claimed row stays hidden from other senders (renewed by heartbeats while it is posted)."""
    heartbeat_s: float = 0.0
    """How often the leases of the rows being posted are renewed; 0: a third of `lease_s`."""
    poll_interval_s: float = 2.0
    max_concurrent: int = 16
    """Callbacks in flight at once, over all destinations (each holds one sender thread)."""
    max_per_destination: int = 2
    """Callbacks in flight at once to one destination (scheme, host and port)."""
    allow_private: bool = False
    """Allow private, loopback and link-local callback addresses (tests; an intranet receiver)."""
    allowed_networks: tuple[str, ...] = field(default_factory=tuple)
    user_agent: str = "ivrgate-callbacks/0.1"

    def __post_init__(self) -> None:
        if self.connect_timeout_s <= 0 or self.total_timeout_s <= 0 or self.poll_interval_s <= 0:
            raise ValueError("callback timeouts and poll interval must be positive")
        if min(self.max_attempts, self.batch, self.max_concurrent, self.max_per_destination) < 1:
            raise ValueError("max_attempts, batch, max_concurrent and max_per_destination must be at least 1")
        heartbeat_interval(self.lease_s, self.heartbeat_s)  # ValueError unless lease_s > 0, heartbeat_s >= 0
        if self.secret and len(self.secret) < 32:
            raise ValueError("the callback master secret needs at least 32 characters")


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`: `sha256=<hex HMAC-SHA256 of the raw body>`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_SCHEME}={digest}"


def verify(secret: str, body: bytes, header: str) -> bool:
    """Whether `header` is the signature of `body` under `secret` (constant-time comparison)."""
    return hmac.compare_digest(sign(secret, body), header.strip())


def account_ref(account_id: int) -> str:
    """The outbox `secret_ref` of an owner account (store.queue writes `account:<id>`)."""
    return f"account:{account_id}"


class CallbackSecrets:
    """Derives each account's signing secret from the master key (module docstring)."""

    def __init__(self, master: bytes) -> None:
        if len(master) < 32:
            raise ValueError("the callback master key needs at least 32 bytes")
        self._master = master

    @classmethod
    def load(cls, settings: CallbackSettings, data_dir: Path) -> CallbackSecrets:
        """From `settings.secret`, else from <data_dir>/callback.key (created, mode 0600, when missing)."""
        if settings.secret:
            return cls(settings.secret.encode())
        return cls(_read_or_create_key(data_dir / KEY_FILE))

    def for_ref(self, secret_ref: str) -> str:
        """The secret named by an outbox row's `secret_ref` (64 hex characters)."""
        return hmac.new(self._master, f"ivrgate-callback:{secret_ref}".encode(), hashlib.sha256).hexdigest()

    def for_account(self, account_id: int) -> str:
        return self.for_ref(account_ref(account_id))


def _read_or_create_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes().strip()
        if len(key) < 32:
            raise ValueError(f"{path} holds a key shorter than 32 bytes") from None
        return key
    with os.fdopen(fd, "wb") as out:
        key = secrets.token_hex(32).encode()
        out.write(key + b"\n")
    log.info("created the callback master key %s", path)
    return key
