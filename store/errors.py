"""Errors of the store layer, each with the seed status code, status text and v1 HTTP status a front
answers with (coded.errors). The account and message refusals live here, once, because the store raises
them; the API layer raises the same classes (api.core.errors holds only its own)."""

from __future__ import annotations

from coded.errors import CodedError


class StoreError(CodedError, RuntimeError):
    """A store operation that cannot be carried out; nothing of it was written."""

    code = 504
    status_text = "DATABASE ERROR"
    http_status = 503


class DatabaseWriteError(StoreError):
    """507: writing the store failed (store.db.store_failure); the transaction was rolled back, nothing
    was half-written. A failed read is StoreError itself (504)."""

    code = 507


class DatabaseUnavailable(StoreError):
    """508: the store could not be reached, was locked or timed out (connection refused, pool exhausted,
    `database is locked`)."""

    code = 508


class InsufficientBalance(StoreError):
    """503: the balance (or a sub-user's spending limit) cannot cover the reservation of the request."""

    code = 503
    status_text = "INSUFFICIENT BALANCE"
    http_status = 402


class AccountNotFound(StoreError):
    """404: the account a request acts for does not exist (e.g. a sub-user whose parent account is gone).

    A wrong username or password is 505, never 404, so an answer does not reveal which usernames exist."""

    code = 404
    status_text = "ACCOUNT OR USER DOES NOT EXIST"
    http_status = 404


class WrongCredentials(StoreError):
    """505: no user has this username, or the password is wrong (deliberately the same answer)."""

    code = 505
    status_text = "USER NOT FOUND OR WRONG PASSWORD"
    http_status = 401


class AccountNotActive(StoreError):
    """506: the credentials are right but the account (or its parent) is disabled."""

    code = 506
    status_text = "ACCOUNT NOT ACTIVE"
    http_status = 403


class InvalidUsername(StoreError):
    """510: `username` missing, empty, too long or holding whitespace or control characters."""

    code = 510
    status_text = "INVALID USERNAME"
    http_status = 422


class InvalidPassword(StoreError):
    """512: `password` missing, empty or too long."""

    code = 512
    status_text = "INVALID PASSWORD"
    http_status = 422


class MessageNotFound(StoreError):
    """An unknown, malformed or foreign message ID (DESIGN.md: 500, not 404, in the legacy answer)."""

    code = 500
    status_text = "ERROR: MESSAGE NOT FOUND"
    http_status = 404


class NoRate(StoreError):
    """No rate prefix matches the number."""

    code = 513
    status_text = "INVALID PIN"
    http_status = 422


class InvalidRates(StoreError):
    """A rates CSV that cannot be imported (the line is named in the detail)."""

    code = 500
    status_text = "ERROR: INVALID RATES FILE"
    http_status = 422


class LeaseLost(StoreError):
    """The worker no longer holds the message's lease: it expired and another worker reclaimed it."""

    code = 508
    status_text = "DATABASE ERROR"


class DuplicateEntry(StoreError):
    """A unique name (username, group, virtual number) that already exists."""

    code = 500
    status_text = "ERROR: ALREADY EXISTS"
    http_status = 409
