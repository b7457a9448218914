"""/v1/numbers: the account's virtual numbers (incoming SMS) and the webhook each one POSTs to; owners
only. The rules are api.core.numbers', shared with the CLI and the GUI."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.core import numbers
from api.fronts.v1.deps import OwnerDep, StoreDep
from api.fronts.v1.problems import V1Route
from api.fronts.v1.schemas import NumberCreate, NumberPublic, NumberUpdate, number_public

router = APIRouter(prefix="/numbers", tags=["numbers"], route_class=V1Route)


@router.get("", response_model=list[NumberPublic])
def list_numbers(store: StoreDep, caller: OwnerDep) -> list[NumberPublic]:
    with store.read() as session:
        return [number_public(row) for row in numbers.list_numbers(session, caller)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=NumberPublic)
def add_number(body: NumberCreate, store: StoreDep, caller: OwnerDep) -> NumberPublic:
    """Receive SMS on a number: 409 when it is already assigned (to any account)."""
    settings = store.gateway.settings
    with store.write() as session:
        row = numbers.add_number(session, caller, body.number, body.webhook_url, store.now(),
                                 phones=settings.phones, max_url_chars=settings.forms.max_url_chars)
        return number_public(row)


@router.get("/{number}", response_model=NumberPublic)
def get_number(number: str, store: StoreDep, caller: OwnerDep) -> NumberPublic:
    with store.read() as session:
        return number_public(numbers.get_number(session, caller, number, store.gateway.settings.phones))


@router.patch("/{number}", response_model=NumberPublic)
def change_number(number: str, body: NumberUpdate, store: StoreDep, caller: OwnerDep) -> NumberPublic:
    """Point the number at another webhook (messages already queued for the old one still go there)."""
    settings = store.gateway.settings
    with store.write() as session:
        row = numbers.change_number(session, caller, number, body.webhook_url,
                                    phones=settings.phones, max_url_chars=settings.forms.max_url_chars)
        return number_public(row)


@router.delete("/{number}", status_code=status.HTTP_204_NO_CONTENT)
def remove_number(number: str, store: StoreDep, caller: OwnerDep) -> None:
    """Stop receiving SMS on the number; messages received before stay in the history."""
    with store.write() as session:
        numbers.remove_number(session, caller, number, store.gateway.settings.phones)
