"""Do-not-call entries: the account's list and (administrators) the global one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.core.errors import InvalidParameter
from api.core.manage.base import (
    Forbidden,
    NotFound,
    Viewer,
    require_admin,
)
from api.core.manage.messages import DEFAULT_PAGE, page_size
from api.core.phones import PhoneSettings, parse_phone
from store import lists
from store.models import (
    DoNotCall,
    Role,
)


def _dnc_scope(viewer: Viewer, global_list: bool) -> int | None:
    if global_list:
        require_admin(viewer)
        return None
    if viewer.role == Role.ADMINISTRATOR:
        raise InvalidParameter("global", "an administrator manages the global list (global=true)")
    return viewer.owner_id


def list_do_not_call(
    session: Session, viewer: Viewer, *, global_list: bool = False, limit: int = DEFAULT_PAGE, after: int = 0
) -> list[DoNotCall]:
    """The account's entries (or the global list, administrators only), by id after `after`."""
    account_id = _dnc_scope(viewer, global_list)
    scope = DoNotCall.account_id.is_(None) if account_id is None else DoNotCall.account_id == account_id
    query = select(DoNotCall).where(scope, DoNotCall.id > after).order_by(DoNotCall.id)
    query = query.limit(page_size(limit))
    return list(session.scalars(query))


def add_do_not_call(
    session: Session,
    viewer: Viewer,
    entries: Sequence[tuple[str, str]],
    now: dt.datetime,
    *,
    global_list: bool = False,
    phones: PhoneSettings | None = None,
) -> list[DoNotCall]:
    """Block (phone, note) pairs for the account (or everyone); one bad number refuses them all."""
    account_id = _dnc_scope(viewer, global_list)
    settings = phones or PhoneSettings()
    parsed = [(parse_phone(phone, settings), note.strip()[:500]) for phone, note in entries]
    return [lists.add_do_not_call(session, e164, now, account_id, note) for e164, note in parsed]


def import_do_not_call(
    session: Session,
    viewer: Viewer,
    entries: Sequence[tuple[str, str]],
    now: dt.datetime,
    *,
    global_list: bool = False,
    phones: PhoneSettings | None = None,
) -> int:
    """add_do_not_call() for a whole file; answers how many numbers were not on the list before."""
    account_id = _dnc_scope(viewer, global_list)
    scope = DoNotCall.account_id.is_(None) if account_id is None else DoNotCall.account_id == account_id
    before = session.scalar(select(func.count()).select_from(DoNotCall).where(scope)) or 0
    add_do_not_call(session, viewer, entries, now, global_list=global_list, phones=phones)
    after = session.scalar(select(func.count()).select_from(DoNotCall).where(scope)) or 0
    return int(after) - int(before)


def remove_do_not_call(
    session: Session,
    viewer: Viewer,
    phone: str,
    *,
    global_list: bool = False,
    phones: PhoneSettings | None = None,
) -> None:
    """Unblock a number (owners and administrators only: a sub-user may block, never unblock)."""
    if viewer.role == Role.SUBUSER:
        raise Forbidden("only the account owner removes do-not-call entries")
    account_id = _dnc_scope(viewer, global_list)
    if lists.remove_do_not_call(session, parse_phone(phone, phones or PhoneSettings()), account_id) == 0:
        raise NotFound("the number is not on the list")


# --- ledger --------------------------------------------------------------------------------------------
