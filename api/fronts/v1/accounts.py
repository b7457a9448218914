"""/v1/me, /v1/subusers, /v1/keys and /v1/callbacks/secret: who the caller is, the owner's sub-users,
the caller's API keys, and the secret that signs its status callbacks."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.core import manage
from api.core.signing import SIGNATURE_HEADER
from api.fronts.v1.deps import CallerDep, OwnerDep, SecretsDep, StoreDep
from api.fronts.v1.problems import V1Route
from api.fronts.v1.schemas import (
    CallbackSecretPublic,
    KeyCreate,
    KeyCreated,
    KeyPublic,
    MePublic,
    PasswordReset,
    RowId,
    SubUserCreate,
    SubUserPublic,
    SubUserUpdate,
    key_public,
    subuser_public,
)

router = APIRouter(tags=["accounts"], route_class=V1Route)


@router.get("/me", response_model=MePublic)
def me(store: StoreDep, caller: CallerDep) -> MePublic:
    """The authenticated login: its role, the paying account, its spending limit and what it has spent."""
    with store.read() as session:
        account = manage.account_of(session, caller)
        return MePublic(
            id=account.id,
            username=account.username,
            role=account.role,
            owner_id=account.owner_id,
            active=account.active,
            currency=account.currency,
            spending_limit_micros=account.spending_limit,
            spent_micros=manage.spent(session, account),
            created_at=account.created_at,
        )


@router.get("/subusers", response_model=list[SubUserPublic])
def list_subusers(store: StoreDep, caller: OwnerDep) -> list[SubUserPublic]:
    """The owner's sub-users (owners only)."""
    with store.read() as session:
        return [subuser_public(a, manage.spent(session, a)) for a in manage.list_subusers(session, caller)]


@router.post("/subusers", status_code=status.HTTP_201_CREATED, response_model=SubUserPublic)
def create_subuser(body: SubUserCreate, store: StoreDep, caller: OwnerDep) -> SubUserPublic:
    """A new sub-user spending from the owner's balance, within its optional spending limit."""
    with store.write() as session:
        account = manage.create_subuser(
            session,
            caller,
            username=body.username,
            password=body.password,
            now=store.now(),
            spending_limit=body.spending_limit_micros,
        )
        return subuser_public(account, 0)


@router.get("/subusers/{subuser_id}", response_model=SubUserPublic)
def get_subuser(subuser_id: RowId, store: StoreDep, caller: OwnerDep) -> SubUserPublic:
    with store.read() as session:
        account = manage.get_subuser(session, caller, subuser_id)
        return subuser_public(account, manage.spent(session, account))


@router.patch("/subusers/{subuser_id}", response_model=SubUserPublic)
def update_subuser(
    subuser_id: RowId, body: SubUserUpdate, store: StoreDep, caller: OwnerDep
) -> SubUserPublic:
    """Disable or enable a sub-user, set or remove (null) its spending limit."""
    clear = "spending_limit_micros" in body.model_fields_set and body.spending_limit_micros is None
    with store.write() as session:
        account = manage.update_subuser(
            session,
            caller,
            subuser_id,
            active=body.active,
            spending_limit=body.spending_limit_micros,
            clear_limit=clear,
        )
        return subuser_public(account, manage.spent(session, account))


@router.post("/subusers/{subuser_id}/password", status_code=status.HTTP_204_NO_CONTENT)
def reset_password(subuser_id: RowId, body: PasswordReset, store: StoreDep, caller: OwnerDep) -> None:
    """Give a sub-user a new password; every API key of that sub-user is revoked with the old password."""
    with store.write() as session:
        manage.reset_subuser_password(session, caller, subuser_id, body.password, store.now())


@router.get("/keys", response_model=list[KeyPublic])
def list_keys(store: StoreDep, caller: CallerDep) -> list[KeyPublic]:
    """The caller's API keys: prefixes only, revoked ones with the time they were revoked."""
    with store.read() as session:
        return [key_public(row) for row in manage.list_keys(session, caller)]


@router.post("/keys", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
def create_key(body: KeyCreate, store: StoreDep, caller: CallerDep) -> KeyCreated:
    """A new API key of the caller's login. The answer holds the whole key: it is shown this once."""
    with store.write() as session:
        row, key = manage.create_key(session, caller, body.name, store.now())
        return KeyCreated(**key_public(row).model_dump(), key=key)


@router.delete("/keys/{prefix}", response_model=KeyPublic)
def revoke_key(prefix: str, store: StoreDep, caller: CallerDep) -> KeyPublic:
    """Revoke one of the caller's keys by its prefix; it stops working at once."""
    with store.write() as session:
        return key_public(manage.revoke_key(session, caller, prefix, store.now()))


@router.get("/callbacks/secret", response_model=CallbackSecretPublic)
def callback_secret(caller: CallerDep, secrets: SecretsDep) -> CallbackSecretPublic:
    """The secret that signs this account's status callbacks (docs/api-v1.md, "Callbacks")."""
    return CallbackSecretPublic(secret=secrets.for_account(caller.owner_id), header=SIGNATURE_HEADER)
