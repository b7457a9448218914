"""`ivrgate number`: the virtual numbers incoming SMS arrive on, from the command line.

    ivrgate number add +12505550100 --owner user888@yahoo.ca --webhook https://crm.example.com/sms/in
    ivrgate number change 250-555-0100 --webhook https://crm.example.com/sms/in2
    ivrgate number list                          # every number; --owner user888@yahoo.ca for one account
    ivrgate number remove +12505550100

The same rules as /v1/numbers and the GUI (api.core.numbers): numbers are read with `phones.default_region`
and kept in E.164, a number belongs to one owner at most, the webhook is an http(s) URL. `change` and
`remove` act for the number's owner, whoever that is. The schema is brought up to date first.
"""

from __future__ import annotations

import argparse

from sqlalchemy.orm import Session

from api.cli.commands.user import open_store
from api.core import numbers
from api.core.jobs import Caller
from api.core.manage import NotFound
from api.core.settings import Settings
from store import accounts
from store.clock import utc_now
from store.errors import AccountNotFound
from store.models import Account, VirtualNumber


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `number` sub-command."""
    parser = subparsers.add_parser(
        "number", help="add, change, list and remove virtual numbers",
        description="Manage the numbers incoming SMS arrive on, and their webhooks.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="assign a number to an owner")
    add.add_argument("number", help="the number (any format; national forms in phones.default_region)")
    add.add_argument("--owner", required=True, metavar="EMAIL", help="the account owner receiving its SMS")
    add.add_argument("--webhook", required=True, metavar="URL", help="where incoming SMS are POSTed")
    change = actions.add_parser("change", help="point a number at another webhook")
    change.add_argument("number")
    change.add_argument("--webhook", required=True, metavar="URL")
    listing = actions.add_parser("list", help="list numbers with their owners and webhooks")
    listing.add_argument("--owner", metavar="EMAIL", help="only this owner's numbers")
    remove = actions.add_parser("remove", help="stop receiving SMS on a number")
    remove.add_argument("number")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    database = open_store(settings)
    try:
        with database.transaction() as session:
            lines = _act(session, args, settings)
    finally:
        database.dispose()
    for line in lines:
        print(line)
    return 0


def _act(session: Session, args: argparse.Namespace, settings: Settings) -> list[str]:
    phones, max_url = settings.phones, settings.forms.max_url_chars
    if args.action == "add":
        owner = _owner(session, args.owner)
        row = numbers.add_number(session, owner, args.number, args.webhook, utc_now(),
                                 phones=phones, max_url_chars=max_url)
        return [f"added {_describe(session, row)}"]
    if args.action == "list":
        if args.owner:
            rows = numbers.list_numbers(session, _owner(session, args.owner))
        else:
            rows = numbers.all_numbers(session)
        return [_describe(session, row) for row in rows]
    holder = _holder(session, args.number, settings)
    if args.action == "change":
        row = numbers.change_number(session, holder, args.number, args.webhook, phones=phones,
                                    max_url_chars=max_url)
        return [f"changed {_describe(session, row)}"]
    return [f"removed {numbers.remove_number(session, holder, args.number, phones)}"]


def _as_caller(account: Account) -> Caller:
    return Caller(account.id, account.owner_id, account.username, account.role)


def _owner(session: Session, username: str) -> Caller:
    """The login acting: the owner named (a sub-user or an administrator is refused by api.core.numbers)."""
    account = accounts.find_account(session, username)
    if account is None:
        raise AccountNotFound(username)
    return _as_caller(account)


def _holder(session: Session, number: str, settings: Settings) -> Caller:
    """The owner of an assigned number, acting for it."""
    row = numbers.find_number(session, number, settings.phones)
    account = session.get(Account, row.account_id) if row is not None else None
    if row is None or account is None:
        raise NotFound(f"{numbers.normalise(number, settings.phones)} is not assigned")
    return _as_caller(account)


def _describe(session: Session, row: VirtualNumber) -> str:
    """`+12505550100 user888@yahoo.ca https://crm.example.com/sms/in`."""
    owner = session.get(Account, row.account_id)
    return f"{row.number} {owner.username if owner else '?'} {row.webhook_url or '-'}"

