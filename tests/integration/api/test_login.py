"""The one login verdict (api.core.service.Gateway.login, issue 14): password, account state and the upgrade
of
a hash made with older argon2 parameters, for every front. (The state checks were store.accounts'
authenticate() and _check_active(), deleted with their copies; their tests moved here.)"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.core.service import Gateway, NeedsThread, inline
from api.core.settings import Settings
from api.fronts.app import create_app
from store import accounts
from store.db import Database
from store.errors import AccountNotActive, AccountNotFound, WrongCredentials
from store.models import Account
from tests.integration.api.conftest import (
    INACTIVE,
    NOW,
    ORPHAN,
    OWNER,
    PASSWORD,
    SUBUSER,
    World,
    account,
    one,
)

pytestmark = pytest.mark.integration

CURRENT = accounts.DEFAULT_HASHER
"""The parameters production hashes with; the seeded accounts' cheap ones are older."""


def stored_hash(db: Database, username: str) -> str:
    with db.read() as session:
        found = accounts.find_account(session, username)
        assert found is not None
        return found.password_hash


def test_the_verdict_on_password_and_account_state(gateway: Gateway, db: Database, world: World) -> None:
    caller = gateway.login(" User@Hotmail.COM ", PASSWORD)  # the username as typed: trimmed, any case
    assert (caller.user_id, caller.owner_id, caller.username) == (world.owner.id, world.owner.id, OWNER)
    assert caller.credential == stored_hash(db, OWNER)
    sub = gateway.login(SUBUSER, PASSWORD)
    assert (sub.user_id, sub.owner_id, sub.role) == (world.subuser.id, world.owner.id, "subuser")
    for username, password in ((OWNER, "wrong"), ("nobody@hotmail.com", PASSWORD), ("not-an-address", "x")):
        with pytest.raises(WrongCredentials):
            gateway.login(username, password)
    with pytest.raises(AccountNotActive):
        gateway.login(INACTIVE, PASSWORD)
    with pytest.raises(WrongCredentials):  # the state is told only to the one who knows the password
        gateway.login(INACTIVE, "wrong")
    with pytest.raises(AccountNotFound):  # a sub-user whose owner is gone
        gateway.login(ORPHAN, PASSWORD)
    with db.transaction() as session:
        session.execute(update(Account).where(Account.id == world.owner.id).values(active=False))
    with pytest.raises(AccountNotActive):  # a sub-user of a disabled owner
        gateway.login(SUBUSER, PASSWORD)


def test_an_api_key_gets_the_same_account_verdict(gateway: Gateway, db: Database, world: World) -> None:
    with db.transaction() as session:
        owner, sub = session.get_one(Account, world.owner.id), session.get_one(Account, world.subuser.id)
        _, owner_key = accounts.create_api_key(session, owner, NOW, name="ci")
        _, sub_key = accounts.create_api_key(session, sub, NOW, name="ci")
    caller = gateway.login_api_key(sub_key)
    assert (caller.user_id, caller.owner_id, caller.credential) == (world.subuser.id, world.owner.id, None)
    with db.transaction() as session:
        session.execute(update(Account).where(Account.id == world.owner.id).values(active=False))
    for key in (owner_key, sub_key):
        with pytest.raises(AccountNotActive):
            gateway.login_api_key(key)
    with db.read() as session:  # a refusal leaves the key's last use unwritten
        assert session.get_one(Account, world.owner.id).active is False


def test_a_hash_with_old_parameters_is_upgraded_at_an_http_login(
    settings: Settings, db: Database, world: World, hasher: PasswordHasher
) -> None:
    """The seeded hashes use cheap parameters; a production gateway (current parameters) upgrades the
    hash at the first login, through the legacy and the v1 front alike, and keeps accepting it."""
    old_owner, old_sub = stored_hash(db, OWNER), stored_hash(db, SUBUSER)
    assert CURRENT.check_needs_rehash(old_owner) and not hasher.check_needs_rehash(old_owner)
    gateway = Gateway(settings, db, now=lambda: NOW)  # as `ivrgate serve` builds it
    with TestClient(create_app(settings, gateway)) as client:
        balance = client.get("/balance.json", params=account())
        assert balance.status_code == 200, balance.text
        new_owner = stored_hash(db, OWNER)
        assert new_owner != old_owner and not CURRENT.check_needs_rehash(new_owner)
        assert CURRENT.verify(new_owner, PASSWORD)
        # a submission's login (re-checked in the write against the new hash) upgrades the sub-user's
        sent = one(client.post("/matrix_tts", data=account(SUBUSER, phone="12506063167", txt="Hi")).text)
        assert (sent["STATUSCODE"], sent["STATUSTXT"]) == ("200", "OK"), sent
        new_sub = stored_hash(db, SUBUSER)
        assert new_sub != old_sub and not CURRENT.check_needs_rehash(new_sub)
        again = one(client.post("/matrix_tts", data=account(SUBUSER, phone="12506063167", txt="Hi")).text)
        assert again["STATUSCODE"] == "200", again
        assert client.get("/v1/me", auth=(SUBUSER, PASSWORD)).status_code == 200
        assert client.get("/v1/me", auth=(OWNER, PASSWORD)).status_code == 200
    assert (stored_hash(db, OWNER), stored_hash(db, SUBUSER)) == (new_owner, new_sub)  # upgraded once


def test_a_wrong_password_upgrades_nothing(settings: Settings, db: Database, world: World) -> None:
    old = stored_hash(db, OWNER)
    gateway = Gateway(settings, db, now=lambda: NOW)
    with pytest.raises(WrongCredentials):
        gateway.login(OWNER, "wrong")
    with pytest.raises(AccountNotActive):
        gateway.login(INACTIVE, PASSWORD)
    assert stored_hash(db, OWNER) == old
    assert CURRENT.check_needs_rehash(stored_hash(db, INACTIVE))  # a refused login writes nothing


def test_the_upgrade_never_hashes_on_the_event_loop(settings: Settings, db: Database, world: World) -> None:
    old = stored_hash(db, OWNER)
    gateway = Gateway(settings, db, now=lambda: NOW)
    with inline(), pytest.raises(NeedsThread):
        gateway.login(OWNER, PASSWORD, rechecked=True)
    assert stored_hash(db, OWNER) == old
    caller = gateway.login(OWNER, PASSWORD, rechecked=True)  # off the loop (the thread pool)
    assert caller.credential == stored_hash(db, OWNER) != old
    again = gateway.login(OWNER, PASSWORD, rechecked=True)  # the outdated snapshot was dropped
    assert again.credential == caller.credential
