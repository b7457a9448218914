"""`ivrgate db`: the store's schema.

ivrgate db upgrade                      # SQLite in the data directory (--data DIR)
IVRGATE_DATABASE_URL=postgresql://ivrgate@db.example/ivrgate ivrgate db upgrade
ivrgate db current                      # the revision the database is at
"""

from __future__ import annotations

import argparse

from api.core.settings import Settings
from store.db import Database, current_revision, resolve_url


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `db` sub-command."""
    parser = subparsers.add_parser(
        "db",
        help="create or upgrade the store's schema",
        description="Run the store's migrations (SQLite in the data directory, or IVRGATE_DATABASE_URL).",
    )
    parser.add_argument(
        "action",
        choices=("upgrade", "current"),
        help="upgrade to the newest schema, or show the current revision",
    )
    parser.add_argument(
        "--url",
        default="",
        help="database URL (default: IVRGATE_DATABASE_URL, else SQLite at <data dir>/ivrgate.db)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    configured = str(getattr(settings, "database_url", "") or "")
    database = Database.open(resolve_url(args.url or configured, settings.data_dir))
    shown = database.url.render_as_string(hide_password=True)
    try:
        if args.action == "upgrade":
            database.upgrade()
        print(f"{shown}: schema revision {current_revision(database.engine) or 'none'}")
    finally:
        database.dispose()
    return 0
