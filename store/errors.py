"""Errors of the store layer, each with the seed status code and status text a front answers with."""

from __future__ import annotations


class StoreError(RuntimeError):
    """A store operation that cannot be carried out; nothing of it was written."""

    code: int = 504
    status_text: str = "DATABASE ERROR"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.status_text)
        self.detail = detail or self.status_text


class DatabaseWriteError(StoreError):
    """507: writing the store failed (store.db.store_failure); the transaction was rolled back, nothing
    was half-written. A failed read is StoreError itself (504)."""

    code = 507


class DatabaseUnavailable(StoreError):
    """508: the store could not be reached, was locked or timed out (connection refused, pool exhausted,
    `database is locked`)."""

    code = 508


class InsufficientBalance(StoreError):
    """The account's balance (or the sub-user's spending limit) does not cover the reservation."""

    code = 503
    status_text = "INSUFFICIENT BALANCE"


class AccountNotFound(StoreError):
    code = 404
    status_text = "ACCOUNT OR USER DOES NOT EXIST"


class WrongPassword(StoreError):
    code = 505
    status_text = "USER NOT FOUND OR WRONG PASSWORD"


class AccountInactive(StoreError):
    code = 506
    status_text = "ACCOUNT NOT ACTIVE"


class InvalidUsername(StoreError):
    code = 510
    status_text = "INVALID USERNAME"


class InvalidPassword(StoreError):
    code = 512
    status_text = "INVALID PASSWORD"


class MessageNotFound(StoreError):
    """An unknown message ID, or one of another account (DESIGN.md: 500, not 404)."""

    code = 500
    status_text = "ERROR: MESSAGE NOT FOUND"


class NoRate(StoreError):
    """No rate prefix matches the number."""

    code = 513
    status_text = "INVALID PIN"


class InvalidRates(StoreError):
    """A rates CSV that cannot be imported (the line is named in the detail)."""

    code = 500
    status_text = "ERROR: INVALID RATES FILE"


class LeaseLost(StoreError):
    """The worker no longer holds the message's lease: it expired and another worker reclaimed it."""

    code = 508
    status_text = "DATABASE ERROR"


class DuplicateEntry(StoreError):
    """A unique name (username, group, virtual number) that already exists."""

    code = 500
    status_text = "ERROR: ALREADY EXISTS"
