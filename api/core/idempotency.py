"""Idempotency keys: a submission retried with the same key is answered from the store, never written
twice (v1's `Idempotency-Key` header, the legacy routes' `idempotency_key` parameter).

A key belongs to one login (`user_id`) and lives `ttl_s` (24 h by default). The writer (api.core.job_writer)
claims a job's key in the SAME transaction that writes its messages, before it reserves money: the
claim is an insert that does nothing when the key exists, so two submissions with one key, in one
batch, two batches or two processes, write once. The second gets the first's answer (`Replayed`) when
its request hash is the same, IdempotencyConflict (v1: 409) when it differs. A refused submission
releases its claim (nothing was written, so a retry may succeed); an accepted one stores its answer.

The request hash covers what the request asks for (the route, the fields, uploaded bytes), never the
password: the hash is a fast one and is kept for a day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select, update

from api.core.errors import GatewayError, InvalidParameter
from api.core.jobs import Claim, Submitted
from store.db import upsert_insert
from store.models import IdempotencyKey

MAX_KEY_CHARS = 255
_TABLE = IdempotencyKey.metadata.tables[IdempotencyKey.__tablename__]


@dataclass(frozen=True)
class IdempotencySettings:
    """api.core.settings nests it as `idempotency` (docs/operations.md, "Security")."""

    ttl_s: float = 86_400.0
    """How long a key is remembered; after that the same key is a new request."""

    def __post_init__(self) -> None:
        if self.ttl_s <= 0:
            raise ValueError("idempotency.ttl_s must be positive")


class IdempotencyConflict(GatewayError):
    """The key was used for a different request (v1: HTTP 409)."""

    status_text = "ERROR: IDEMPOTENCY KEY REUSED"
    http_status = 409


class Replayed(list[Submitted]):
    """The answer of an earlier submission with the same key and request (nothing new was written)."""


def check_key(key: str) -> str:
    """The key as given (1 to 255 printable ASCII characters); InvalidParameter (422) otherwise."""
    if not 1 <= len(key) <= MAX_KEY_CHARS or not (key.isascii() and key.isprintable()):
        raise InvalidParameter("idempotency_key",
                               f"an idempotency key is 1 to {MAX_KEY_CHARS} printable ASCII characters")
    return key


def request_hash(route: str, fields: Mapping[str, Any]) -> str:
    """SHA-256 of the route and the request's fields (bytes hashed by content; `password` left out)."""

    def plain(value: Any) -> Any:
        if isinstance(value, bytes | bytearray):
            return {"sha256": hashlib.sha256(value).hexdigest()}
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        data = getattr(value, "data", None)  # an upload
        if isinstance(data, bytes):
            return {"file": getattr(value, "filename", ""), "sha256": hashlib.sha256(data).hexdigest()}
        return value if isinstance(value, str | int | float | bool) or value is None else str(value)

    kept = {k: v for k, v in fields.items() if k not in ("password", "idempotency_key")}
    text = json.dumps([route, plain(kept)], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _submitted(stored: Any) -> Replayed:
    return Replayed(Submitted(item["id"], item["phone"], int(item["code"]), item["text"]) for item in stored)


def stored_answer(row: Any, claim: Claim) -> Replayed:
    """The answer kept for a key: Replayed, or IdempotencyConflict for another request or one whose
    answer is not written yet (a submission still in progress elsewhere)."""
    if row.request_hash != claim.request_hash:
        raise IdempotencyConflict(f"idempotency key {claim.key[:40]!r} was used for another request")
    if row.response is None:
        raise IdempotencyConflict(f"a request with idempotency key {claim.key[:40]!r} is in progress")
    return _submitted(row.response)


def find(conn: Connection, user_id: int, claim: Claim, now: dt.datetime) -> Replayed | None:
    """The answer already kept for this login's key (None: no live key); IdempotencyConflict."""
    row = conn.execute(select(_TABLE).where(
        _TABLE.c.user_id == user_id, _TABLE.c.key == claim.key, _TABLE.c.expires_at > now)).first()
    return None if row is None else stored_answer(row, claim)


def claim(conn: Connection, user_id: int, claim: Claim, now: dt.datetime, ttl_s: float) -> Replayed | None:
    """Take the key for a submission in this transaction: None when it is ours now, else the earlier
    answer (Replayed) or IdempotencyConflict. An expired key is taken over."""
    conn.execute(delete(_TABLE).where(
        _TABLE.c.user_id == user_id, _TABLE.c.key == claim.key, _TABLE.c.expires_at <= now))
    insert = upsert_insert(conn)
    values = {"user_id": user_id, "key": claim.key, "request_hash": claim.request_hash, "response": None,
              "created_at": now, "expires_at": now + dt.timedelta(seconds=ttl_s)}
    taken = conn.execute(insert(_TABLE).values(values).on_conflict_do_nothing(
        index_elements=["user_id", "key"]).returning(_TABLE.c.key)).first()
    if taken is not None:
        return None
    row = conn.execute(select(_TABLE).where(_TABLE.c.user_id == user_id, _TABLE.c.key == claim.key)).one()
    return stored_answer(row, claim)


def keep(conn: Connection, user_id: int, claim: Claim, submitted: list[Submitted]) -> None:
    """Store the answer of the submission that holds the claim (same transaction as its messages)."""
    answer = [{"id": s.message_id, "phone": s.phone, "code": s.code, "text": s.text} for s in submitted]
    conn.execute(update(_TABLE).where(_TABLE.c.user_id == user_id, _TABLE.c.key == claim.key)
                 .values(response=answer))


def release(conn: Connection, user_id: int, claim: Claim) -> None:
    """Give the claim back: the submission was refused and wrote nothing."""
    conn.execute(delete(_TABLE).where(_TABLE.c.user_id == user_id, _TABLE.c.key == claim.key))


def prune(conn: Connection, now: dt.datetime) -> int:
    """Delete expired keys; how many."""
    return int(conn.execute(delete(_TABLE).where(_TABLE.c.expires_at <= now)).rowcount or 0)
