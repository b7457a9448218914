"""Accounts, passwords and API keys.

Passwords are hashed with argon2id (argon2-cffi, DEFAULT_HASHER's parameters); a verify costs tens of
milliseconds on purpose, which is why the API keeps a short-lived cache of verified credentials. The one
login verdict (password, account state, upgrade of a hash made with older parameters) is
api.core.service.Gateway.login's: every front logs in through it.

API keys look like `ivg_<prefix>_<secret>`: the prefix (8 hex characters) finds the row, and only the
SHA-256 of the whole key is stored. A plain hash is enough there (unlike passwords) because the secret is
256 random bits, beyond guessing however fast the hash is; the plaintext is shown once, at creation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.errors import (
    AccountNotFound,
    DuplicateEntry,
    InvalidPassword,
    InvalidUsername,
    WrongCredentials,
)
from store.models import Account, ApiKey, Role

KEY_SCHEME = "ivg"
MAX_PASSWORD = 256
DEFAULT_HASHER = PasswordHasher()


def normalise_username(username: str) -> str:
    """The stored form of a username (an e-mail address): trimmed, lower-cased; InvalidUsername (510)
    when it is not shaped like one."""
    name = username.strip().lower()
    local, at, domain = name.rpartition("@")
    if not at or not local or "." not in domain or len(name) > 254 or any(ch.isspace() for ch in name):
        raise InvalidUsername(f"not an e-mail address: {username!r}")
    return name


def check_password(password: str) -> None:
    if not password or len(password) > MAX_PASSWORD or "\x00" in password:
        raise InvalidPassword("a password must be 1 to 256 characters")


def create_account(
    session: Session,
    *,
    username: str,
    password: str,
    now: dt.datetime,
    role: Role = Role.OWNER,
    parent: Account | None = None,
    spending_limit: int | None = None,
    currency: str = "USD",
    hasher: PasswordHasher = DEFAULT_HASHER,
) -> Account:
    """A new login. Sub-users need a `parent` owner (and share its balance and currency)."""
    check_password(password)
    if (role == Role.SUBUSER) != (parent is not None):
        raise ValueError("a sub-user needs a parent owner, and only a sub-user has one")
    if parent is not None and parent.role != Role.OWNER:
        raise ValueError("a sub-user's parent must be an owner")
    account = Account(
        username=normalise_username(username),
        password_hash=hasher.hash(password),
        active=True,
        role=role.value,
        parent_id=parent.id if parent else None,
        spending_limit=spending_limit,
        currency=parent.currency if parent else currency,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(account)
    except IntegrityError:
        raise DuplicateEntry(f"username {account.username!r} exists") from None
    return account


def find_account(session: Session, username: str) -> Account | None:
    try:
        name = normalise_username(username)
    except InvalidUsername:
        return None
    return session.scalar(select(Account).where(Account.username == name))


def set_password(
    session: Session, account: Account, password: str, hasher: PasswordHasher = DEFAULT_HASHER
) -> None:
    check_password(password)
    account.password_hash = hasher.hash(password)
    session.flush()


def set_active(session: Session, account: Account, active: bool) -> None:
    account.active = active
    session.flush()


def subusers(session: Session, owner: Account) -> Sequence[Account]:
    return session.scalars(select(Account).where(Account.parent_id == owner.id).order_by(Account.id)).all()


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(
    session: Session,
    account: Account,
    now: dt.datetime,
    name: str = "",
    token: Callable[[int], str] = secrets.token_urlsafe,
) -> tuple[ApiKey, str]:
    """A new API key for `account`: (its row, the plaintext key, which is not stored anywhere)."""
    prefix = secrets.token_hex(4)
    key = f"{KEY_SCHEME}_{prefix}_{token(32)}"
    row = ApiKey(
        account_id=account.id, prefix=prefix, key_hash=_key_hash(key), name=name[:100], created_at=now
    )
    session.add(row)
    session.flush()
    return row, key


def verify_api_key(session: Session, key: str, now: dt.datetime) -> Account:
    """The account of an unrevoked API key; WrongCredentials (505) for anything else, AccountNotFound (404)
    when its account is gone. Whether that account may act is the login verdict's
    (api.core.service.Gateway.login_api_key)."""
    scheme, _, rest = key.partition("_")
    prefix = rest.partition("_")[0]
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix)) if scheme == KEY_SCHEME else None
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, _key_hash(key)):
        raise WrongCredentials("invalid API key")
    account = session.get(Account, row.account_id)
    if account is None:
        raise AccountNotFound("API key without account")
    row.last_used_at = now
    return account


def revoke_api_keys(session: Session, account: Account, now: dt.datetime) -> int:
    """Revoke every unrevoked key of `account` (its password was reset); how many were revoked."""
    rows = session.scalars(
        select(ApiKey).where(ApiKey.account_id == account.id, ApiKey.revoked_at.is_(None))
    ).all()
    for row in rows:
        row.revoked_at = now
    session.flush()
    return len(rows)


def revoke_api_key(session: Session, account: Account, prefix: str, now: dt.datetime) -> bool:
    """Revoke one of `account`'s keys by its prefix; False when it has no such key."""
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.account_id == account.id))
    if row is None:
        return False
    row.revoked_at = now
    session.flush()
    return True
