"""Top-ups through a payment provider (docs/gui.md, "Adding a payment provider").

A provider turns a top-up request into money on the ledger. The GUI asks it which logins may use it
(`allowed`), shows its form fields, and calls `top_up` in one store transaction; a provider that pays
asynchronously (a card processor's hosted page) answers a `redirect` and credits later from its own
webhook route through `api.core.manage.top_up`'s rules: a reference is credited at most once per account.

The built-in provider is `ManualCredit`: an administrator records a payment received elsewhere (a bank
transfer, an invoice) with its reference, and the owner's balance rises at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from api.core import manage
from api.core.errors import InvalidParameter
from api.core.jobs import Caller
from store import accounts
from store.models import Role


@dataclass(frozen=True)
class TopUpRequest:
    """What the top-up form asks for."""

    account: str
    """The owner's username (an administrator credits any owner)."""
    amount: int
    """Micro-units, positive."""
    reference: str
    """The payment's own reference (bank transfer, invoice number): unique per account."""


@dataclass(frozen=True)
class TopUpResult:
    """A credit made now (`entry_id`), or a page the payer must visit first (`redirect`)."""

    entry_id: int | None = None
    redirect: str | None = None
    message: str = ""


class PaymentProvider(Protocol):
    """A way to pay money into an account; registered in `PROVIDERS` by its `name`."""

    @property
    def name(self) -> str:
        """A short identifier, used in URLs and the ledger note."""
        ...

    @property
    def title(self) -> str:
        """What the GUI calls it."""
        ...

    def allowed(self, caller: Caller) -> bool:
        """Whether this login may start a top-up with this provider."""
        ...

    def top_up(
        self, session: Session, caller: Caller, request: TopUpRequest, now: dt.datetime
    ) -> TopUpResult:
        """Credit now or start the payment; raise a coded error (api.core.errors) to refuse."""
        ...


class ManualCredit:
    """An administrator's manual credit with a reference (a payment received outside ivrgate)."""

    name = "manual"
    title = "Manual credit (administrator)"

    def allowed(self, caller: Caller) -> bool:
        return caller.role == Role.ADMINISTRATOR

    def top_up(
        self, session: Session, caller: Caller, request: TopUpRequest, now: dt.datetime
    ) -> TopUpResult:
        """Credit the named owner now; the reference must be new for that account."""
        target = accounts.find_account(session, request.account)
        if target is None:
            raise manage.NotFound(f"no account {request.account[:60]!r}")
        entry = manage.top_up(session, caller, target.id, request.amount, request.reference, now)
        shown = f"credited {target.username} with reference {entry.note}"
        return TopUpResult(entry_id=entry.id, message=shown)


PROVIDERS: dict[str, PaymentProvider] = {ManualCredit.name: ManualCredit()}
"""The providers the GUI offers, by name. A deployment adds its own here at start-up."""


def provider(name: str) -> PaymentProvider:
    """The registered provider `name`; InvalidParameter for an unknown one."""
    found = PROVIDERS.get(name)
    if found is None:
        raise InvalidParameter("provider", f"no payment provider {name[:40]!r}")
    return found


def available(caller: Caller) -> list[PaymentProvider]:
    """The providers this login may use, in registration order."""
    return [p for p in PROVIDERS.values() if p.allowed(caller)]
