"""v1 API keys: list, create, revoke."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core.manage.base import (
    NotFound,
    Viewer,
    account_of,
    valid_name,
)
from store import accounts
from store.models import (
    ApiKey,
)


def list_keys(session: Session, viewer: Viewer) -> Sequence[ApiKey]:
    """The viewer's own keys, revoked ones included (they show when they were revoked)."""
    query = select(ApiKey).where(ApiKey.account_id == viewer.user_id).order_by(ApiKey.id)
    return session.scalars(query).all()


def create_key(session: Session, viewer: Viewer, name: str, now: dt.datetime) -> tuple[ApiKey, str]:
    """A new key of the viewer's login: (row, plaintext). The plaintext is not kept anywhere."""
    return accounts.create_api_key(session, account_of(session, viewer), now, valid_name(name, "name"))


def revoke_key(session: Session, viewer: Viewer, prefix: str, now: dt.datetime) -> ApiKey:
    """Revoke one of the viewer's keys by its prefix (revoking twice keeps the first time)."""
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.account_id == viewer.user_id))
    if row is None:
        raise NotFound(f"no API key {prefix[:16]!r}")
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
    return row


# --- groups --------------------------------------------------------------------------------------------
