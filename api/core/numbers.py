"""Virtual numbers: the numbers an account receives SMS on, and the webhook each incoming message is POSTed
to (sms/inbound.py). The one set of functions the v1 API (/v1/numbers), the CLI (`ivrgate number`) and
the GUI (/ui/numbers) call, so every front follows the same rules:

- only account owners manage numbers (sub-users and administrators get 403 FORBIDDEN); a number of
  another account is NOT FOUND, as if it did not exist;
- a number is read like every other (api.core.phones.parse_phone: `phones.default_region` for national
  forms) and kept in E.164; one that cannot be a number is 513 INVALID PIN;
- a number is assigned to one account at most: adding one already assigned, to anyone, is ALREADY
  EXISTS (409 in v1);
- the webhook URL is an absolute http(s) URL with a host, no whitespace, at most
  `forms.max_url_chars` characters (the rule status callbacks follow: api.core.checks.check_url).

Plain functions over a store `Session`, in the caller's transaction; time is an argument.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from api.core.checks import check_url
from api.core.errors import InvalidParameter
from api.core.manage import NotFound, Viewer, require_owner
from api.core.phones import PhoneSettings, parse_phone
from ivr.errors import IvrError
from store import lists
from store.errors import DuplicateEntry
from store.models import VirtualNumber

MAX_URL_CHARS = 2048
"""The webhook URL's length limit when the caller passes none (the default of `forms.max_url_chars`)."""


def check_webhook(url: str, max_chars: int = MAX_URL_CHARS) -> str:
    """The webhook URL, stripped; `ERROR: INVALID WEBHOOK_URL` when it is not an http(s) URL with a host
    or is longer than `max_chars`."""
    text = url.strip()
    if not text:
        raise InvalidParameter("webhook_url", "a webhook URL (http or https) is required")
    if len(text) > max_chars:
        raise InvalidParameter("webhook_url", f"the webhook URL is longer than {max_chars} characters")
    try:
        return check_url(text, max_chars)
    except IvrError:  # check_url's refusal speaks of voice URLs; this is the webhook
        shown = text[:60]
        raise InvalidParameter("webhook_url", f"not an http or https URL with a host: {shown!r}") from None


def normalise(raw: str, phones: PhoneSettings | None = None) -> str:
    """The number in E.164, read with the service's rule; 513 INVALID PIN when it is not one."""
    return parse_phone(raw, phones or PhoneSettings())


def list_numbers(session: Session, viewer: Viewer) -> Sequence[VirtualNumber]:
    """The owner's numbers, in number order."""
    require_owner(viewer)
    return lists.account_numbers(session, viewer.owner_id)


def get_number(
    session: Session, viewer: Viewer, number: str, phones: PhoneSettings | None = None
) -> VirtualNumber:
    """One of the owner's numbers; NOT FOUND when it is nobody's or another account's."""
    require_owner(viewer)
    e164 = normalise(number, phones)
    row = lists.virtual_number(session, e164)
    if row is None or row.account_id != viewer.owner_id:
        raise NotFound(f"{e164} is not one of this account's numbers")
    return row


def add_number(
    session: Session,
    viewer: Viewer,
    number: str,
    webhook_url: str,
    now: dt.datetime,
    *,
    phones: PhoneSettings | None = None,
    max_url_chars: int = MAX_URL_CHARS,
) -> VirtualNumber:
    """Assign a number to the owner's account with its webhook; ALREADY EXISTS when it is assigned."""
    require_owner(viewer)
    e164 = normalise(number, phones)
    url = check_webhook(webhook_url, max_url_chars)
    if lists.virtual_number(session, e164) is not None:
        raise DuplicateEntry(f"{e164} is already assigned")
    return lists.add_virtual_number(session, e164, viewer.owner_id, url, now)


def change_number(
    session: Session,
    viewer: Viewer,
    number: str,
    webhook_url: str,
    *,
    phones: PhoneSettings | None = None,
    max_url_chars: int = MAX_URL_CHARS,
) -> VirtualNumber:
    """Point one of the owner's numbers at another webhook."""
    row = get_number(session, viewer, number, phones)
    row.webhook_url = check_webhook(webhook_url, max_url_chars)
    session.flush()
    return row


def remove_number(session: Session, viewer: Viewer, number: str, phones: PhoneSettings | None = None) -> str:
    """Release one of the owner's numbers; answers it in E.164. Incoming SMS to it are dropped from then on
    (messages already received stay in the history)."""
    row = get_number(session, viewer, number, phones)
    e164 = row.number
    lists.remove_virtual_number(session, e164)
    return e164


def find_number(session: Session, number: str, phones: PhoneSettings | None = None) -> VirtualNumber | None:
    """The assignment of a number whoever holds it (the operator's CLI); None when it is nobody's."""
    return lists.virtual_number(session, normalise(number, phones))


def all_numbers(session: Session) -> Sequence[VirtualNumber]:
    """Every assigned number (the operator's CLI listing)."""
    return lists.all_numbers(session)
