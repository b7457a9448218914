"""`ivrgate user`: accounts from the command line.

    ivrgate --data /srv/ivrgate user add user888@yahoo.ca --credit 10.00          # asks for the password
    ivrgate user add ops@example.com --password 's3cret' --admin
    ivrgate user add clerk@example.com --password 'pw' --parent user888@yahoo.ca --limit 5.00
    ivrgate user credit user888@yahoo.ca 25.50                                     # top up
    ivrgate user list
    ivrgate user limits user888@yahoo.ca --max-calls 2 --calls-per-second 5      # over every worker node
    ivrgate user limits user888@yahoo.ca --max-calls default                     # back to dialer.*

Amounts are in currency units (`10.00`, up to 6 decimals) and are stored as micro-units. The schema is
brought up to date first (as `ivrgate db upgrade` does), so a fresh data directory works at once.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from api.core.manage import set_call_limits
from api.core.settings import Settings
from store import accounts, ledger
from store.clock import utc_now
from store.db import Database, resolve_url
from store.errors import AccountNotFound, InvalidPassword
from store.models import Account, Role
from store.rating import format_price, parse_price


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `user` sub-command."""
    parser = subparsers.add_parser("user", help="add, list and top up accounts",
                                   description="Manage accounts (owners, sub-users, administrators).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create an account")
    add.add_argument("email", help="the username (an e-mail address)")
    add.add_argument("--password", help="the password (default: asked on the terminal, or read from stdin)")
    add.add_argument("--credit", type=_amount, default=0, metavar="AMOUNT",
                     help="initial balance in currency units, e.g. 10.00 (owners only)")
    add.add_argument("--admin", action="store_true", help="an administrator (sees every account)")
    add.add_argument("--parent", metavar="OWNER", help="make a sub-user of this owner (shares its balance)")
    add.add_argument("--limit", type=_amount, default=None, metavar="AMOUNT",
                     help="a sub-user's spending limit in currency units")
    add.add_argument("--currency", default="", help="currency of an owner (default: store.currency)")
    credit = actions.add_parser("credit", help="top up an owner's balance")
    credit.add_argument("email")
    credit.add_argument("amount", type=_amount, help="currency units, e.g. 25.50")
    actions.add_parser("list", help="list accounts with their balances")
    limits = actions.add_parser("limits", help="show or set an owner's voice call limits (every node)")
    limits.add_argument("email")
    limits.add_argument("--max-calls", type=_limit(int), default=argparse.SUPPRESS, metavar="N|default",
                        help="calls in flight together (default: the node's dialer.max_concurrent)")
    limits.add_argument("--calls-per-second", type=_limit(float), default=argparse.SUPPRESS,
                        metavar="R|default",
                        help="call attempts started per second (default: dialer.calls_per_second)")
    parser.set_defaults(func=run)


KEEP = "keep"
"""An option not given (argparse leaves it out): the limit stays as it is."""


def _limit(kind: type[int] | type[float]) -> Callable[[str], int | float | None]:
    """A limit option's parser: a number, or `default` (None: the node's dialer setting)."""
    def parse(text: str) -> int | float | None:
        if text == "default":
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number or 'default': {text!r}") from None
    return parse


def _amount(text: str) -> int:
    try:
        return parse_price(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def open_store(settings: Settings) -> Database:
    """The configured store, migrated to the newest schema."""
    database = Database.open(resolve_url(settings.store.database_url, settings.data_dir),
                             settings.store.sqlite_busy_timeout_s)
    database.upgrade()
    return database


def read_password(given: str | None) -> str:
    """The --password value, else asked twice on a terminal, else the first line of stdin."""
    if given is not None:
        return given
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise InvalidPassword("the passwords differ")
    return first


def run(args: argparse.Namespace, settings: Settings) -> int:
    database = open_store(settings)
    try:
        if args.action == "add":
            return add_user(args, settings, database)
        if args.action == "credit":
            return credit_user(args, database)
        if args.action == "limits":
            return call_limits(args, database)
        return list_users(database)
    finally:
        database.dispose()


def add_user(args: argparse.Namespace, settings: Settings, database: Database) -> int:
    if args.parent and (args.admin or args.credit):
        print("ivrgate: a sub-user has no balance of its own and cannot be an administrator", file=sys.stderr)
        return 2
    password = read_password(args.password)
    now = utc_now()
    with database.transaction() as session:
        parent = _find(session, args.parent) if args.parent else None
        role = Role.SUBUSER if parent else Role.ADMINISTRATOR if args.admin else Role.OWNER
        account = accounts.create_account(
            session, username=args.email, password=password, now=now, role=role, parent=parent,
            spending_limit=args.limit if parent else None, currency=args.currency or settings.store.currency)
        session.flush()
        if args.credit:
            ledger.top_up(session, account.id, args.credit, now, note="ivrgate user add")
        shown = _describe(session, account)
    print(f"added {shown}")
    return 0


def credit_user(args: argparse.Namespace, database: Database) -> int:
    now = utc_now()
    with database.transaction() as session:
        account = _find(session, args.email)
        if account.parent_id is not None:
            print(f"ivrgate: {account.username} is a sub-user; credit its owner", file=sys.stderr)
            return 2
        ledger.top_up(session, account.id, args.amount, now, note="ivrgate user credit")
        shown = _describe(session, account)
    print(f"credited {shown}")
    return 0


def call_limits(args: argparse.Namespace, database: Database) -> int:
    """Set the limits given (api.core.manage.set_call_limits), print them: `user@example.com max calls 2,
    calls per second default`."""
    with database.transaction() as session:
        account = _find(session, args.email)
        given_calls: Any = getattr(args, "max_calls", KEEP)  # argparse's types: int | None, float | None
        given_rate: Any = getattr(args, "calls_per_second", KEEP)
        calls: int | None = account.max_concurrent_calls if given_calls == KEEP else given_calls
        rate: float | None = account.calls_per_second if given_rate == KEEP else given_rate
        if (calls, rate) != (account.max_concurrent_calls, account.calls_per_second):
            set_call_limits(account, max_concurrent_calls=calls, calls_per_second=rate)
        shown = [("default" if value is None else f"{value:g}") for value in (calls, rate)]
    print(f"{account.username} max calls {shown[0]}, calls per second {shown[1]}")
    return 0


def list_users(database: Database) -> int:
    with database.read() as session:
        rows = [_describe(session, account) for account in session.query(Account).order_by(Account.id)]
    for row in rows:
        print(row)
    return 0


def _find(session: Session, username: str) -> Account:
    account = accounts.find_account(session, username)
    if account is None:
        raise AccountNotFound(username)
    return account


def _describe(session: Session, account: Account) -> str:
    """`user@example.com owner active balance 10.0000 USD` (sub-users: their owner and limit)."""
    state = "active" if account.active else "inactive"
    if account.parent_id is not None:
        owner = session.get(Account, account.parent_id)
        limit = "none" if account.spending_limit is None else format_price(account.spending_limit)
        parent = owner.username if owner else "?"
        return f"{account.username} {account.role} {state} of {parent} limit {limit}"
    money = format_price(ledger.balance(session, account.id))
    return f"{account.username} {account.role} {state} balance {money} {account.currency}"
