"""Management operations that are not submissions: listing messages, sub-users, API keys, groups,
do-not-call entries and the ledger.

These are plain functions over a store `Session`, called by the v1 JSON API and later by the GUI, so no
rule lives in a route. Each takes the `Viewer` that asks (api.core.service.Caller satisfies it) and enforces
who may see or change what:

- administrators see every message and top up any account; they manage the global do-not-call list;
- owners manage their sub-users, their account's groups and do-not-call entries, and see every message
  and ledger entry of their account;
- sub-users see their own messages and ledger entries, their own spending limit and what is left of it
  (never the owner's balance when they have a limit), use and edit their account's groups (create,
  rename, add and remove members, but never delete a group), and may add (never remove) do-not-call
  entries; an owner's reset of a sub-user's password revokes that sub-user's API keys.

docs/api-v1.md, "Roles", has the whole table; every front (v1, the legacy `balance`, the GUI) asks these
functions, so a rule is written once.

Money is in micro-units (store.models.MICROS); time is always an argument.
"""

from __future__ import annotations

from api.core.manage.base import (
    MAX_IMPORT_ROWS,
    MAX_NAME_CHARS,
    Forbidden,
    NotFound,
    Viewer,
    account_of,
    read_csv_pairs,
    require_admin,
    require_not_subuser,
    require_owner,
    valid_name,
)
from api.core.manage.dnc import add_do_not_call, import_do_not_call, list_do_not_call, remove_do_not_call
from api.core.manage.groups import (
    add_members,
    create_group,
    delete_group,
    get_group,
    group_members,
    list_groups,
    remove_member,
    rename_group,
)
from api.core.manage.keys import create_key, list_keys, revoke_key
from api.core.manage.messages import (
    DEFAULT_PAGE,
    MAX_PAGE,
    OUTCOMES,
    InvalidCursor,
    MessageFilter,
    Page,
    decode_cursor,
    encode_cursor,
    filter_messages,
    list_messages,
    message_detail,
    message_scope,
    page_size,
)
from api.core.manage.money import Funds, funds, list_ledger, spent, top_up
from api.core.manage.subusers import (
    MAX_CALL_LIMIT,
    create_subuser,
    get_subuser,
    list_subusers,
    reset_subuser_password,
    set_call_limits,
    update_subuser,
)

__all__ = [
    "DEFAULT_PAGE",
    "MAX_CALL_LIMIT",
    "MAX_IMPORT_ROWS",
    "MAX_NAME_CHARS",
    "MAX_PAGE",
    "OUTCOMES",
    "Forbidden",
    "Funds",
    "InvalidCursor",
    "MessageFilter",
    "NotFound",
    "Page",
    "Viewer",
    "account_of",
    "add_do_not_call",
    "add_members",
    "create_group",
    "create_key",
    "create_subuser",
    "decode_cursor",
    "delete_group",
    "encode_cursor",
    "filter_messages",
    "funds",
    "get_group",
    "get_subuser",
    "group_members",
    "import_do_not_call",
    "list_do_not_call",
    "list_groups",
    "list_keys",
    "list_ledger",
    "list_messages",
    "list_subusers",
    "message_detail",
    "message_scope",
    "page_size",
    "read_csv_pairs",
    "remove_do_not_call",
    "remove_member",
    "rename_group",
    "require_admin",
    "require_not_subuser",
    "require_owner",
    "reset_subuser_password",
    "revoke_key",
    "set_call_limits",
    "spent",
    "top_up",
    "update_subuser",
    "valid_name",
]
