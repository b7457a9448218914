"""Content-addressed audio kept in the database (uploads and fetched voice URLs).

Blobs live in the database, not the data directory: with PostgreSQL the database is the one store every
node shares, so any worker can rebuild a prompt from its message alone. The sizes are bounded by the
upload and fetch limits (10 MiB by default), and one blob serves every recipient of a job.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Blob

log = logging.getLogger(__name__)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put_blob(
    session: Session,
    data: bytes,
    now: dt.datetime,
    media_type: str = "application/octet-stream",
    origin: str = "",
) -> str:
    """Store `data` once under its SHA-256 and return the hash (storing the same bytes again is free)."""
    digest = sha256_hex(data)
    if session.scalar(select(Blob.sha256).where(Blob.sha256 == digest)) is None:
        session.add(
            Blob(
                sha256=digest,
                content=data,
                size=len(data),
                media_type=media_type,
                origin=origin,
                created_at=now,
            )
        )
        session.flush()
    return digest


def get_blob(session: Session, digest: str) -> bytes | None:
    """The bytes stored under `digest`, or None."""
    return session.scalar(select(Blob.content).where(Blob.sha256 == digest))
