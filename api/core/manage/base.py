"""What every management module shares: who asks (Viewer), the role checks, the refusals, the
owner account of a viewer, names and CSV import rows."""

from __future__ import annotations

import csv
import io
from typing import Protocol

from sqlalchemy.orm import Session

from api.core.errors import GatewayError, InvalidParameter
from store.models import (
    Account,
    Role,
)


class Viewer(Protocol):
    """Who is asking (api.core.service.Caller has these fields)."""

    @property
    def user_id(self) -> int: ...

    @property
    def owner_id(self) -> int: ...

    @property
    def role(self) -> str: ...


class Forbidden(GatewayError):
    """The caller's role may not do this (a sub-user managing sub-users, a non-administrator topping up)."""

    status_text = "ERROR: FORBIDDEN"
    http_status = 403


class NotFound(GatewayError):
    """An unknown or foreign sub-user, API key, group member or do-not-call entry."""

    status_text = "ERROR: NOT FOUND"
    http_status = 404



def require_admin(viewer: Viewer) -> None:
    if viewer.role != Role.ADMINISTRATOR:
        raise Forbidden("administrators only")


def require_owner(viewer: Viewer) -> None:
    if viewer.role != Role.OWNER:
        raise Forbidden("account owners only")


def require_not_subuser(viewer: Viewer) -> None:
    if viewer.role == Role.SUBUSER:
        raise Forbidden("the account owner only")


def account_of(session: Session, viewer: Viewer) -> Account:
    """The viewer's own account row."""
    account = session.get(Account, viewer.user_id)
    if account is None:
        raise NotFound(f"account {viewer.user_id}")
    return account


# --- messages ------------------------------------------------------------------------------------------


MAX_IMPORT_ROWS = 100_000
MAX_NAME_CHARS = 100


def valid_name(value: str, field: str) -> str:
    text = value.strip()
    if not text or len(text) > MAX_NAME_CHARS or not text.isprintable():
        raise InvalidParameter(field, f"{field} must be 1 to {MAX_NAME_CHARS} printable characters")
    return text



def read_csv_pairs(text: str, value_column: str) -> list[tuple[str, str]]:
    """(phone, value) rows of a CSV: with a header naming `phone` (and optionally `value_column`), or
    without one, phone first. Blank lines are skipped; more than MAX_IMPORT_ROWS rows are refused."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    rows = [row for row in reader if any(cell.strip() for cell in row)]
    if len(rows) > MAX_IMPORT_ROWS:
        raise InvalidParameter("csv", f"at most {MAX_IMPORT_ROWS} rows at once")
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    if "phone" in header:
        phone_at = header.index("phone")
        value_at = header.index(value_column) if value_column in header else None
        rows = rows[1:]
    else:
        phone_at, value_at = 0, 1
    return [(_cell(row, phone_at), _cell(row, value_at)) for row in rows]


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


# --- do-not-call ---------------------------------------------------------------------------------------
