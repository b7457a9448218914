"""Settings of the store layer (database, money, leases)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoreSettings:
    """How the store is reached and how money and leases behave (docs/store.md)."""

    database_url: str = ""
    """SQLAlchemy URL; empty: IVRGATE_DATABASE_URL, else SQLite at <data dir>/ivrgate.db.
    `postgresql://...` is read as `postgresql+psycopg://...` (psycopg 3)."""
    billing_increment_s: int = 60
    """Calls are charged per started increment: 60 (per minute) or 6."""
    lease_s: float = 60.0
    """How long a claim lasts without a heartbeat; a dead worker's messages return after it."""
    sqlite_busy_timeout_s: float = 30.0
    currency: str = "USD"
    """Currency of new accounts and of rates imported without a currency column."""
