"""`ivrgate rates`: the price list, from a CSV file.

    ivrgate rates import samples/rates.csv              # insert or update by prefix
    ivrgate rates import rates.csv --replace            # and delete every prefix not in the file
    ivrgate rates list

The CSV (docs/store.md) has a header naming `prefix` and any of `sms`, `voice`, `tts` (prices in
currency units: per SMS part, per voice minute, per TTS minute), `currency`, `description`; the longest
matching prefix of a number wins, the empty prefix is the default. A bad line rejects the whole file and
nothing is written.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from api.cli.commands.user import open_store
from api.core.settings import Settings
from store import rating
from store.models import Rate


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `rates` sub-command."""
    parser = subparsers.add_parser("rates", help="import and list rates",
                                   description="Manage the price list (longest prefix wins).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    imports = actions.add_parser("import", help="import a rates CSV")
    imports.add_argument("csv", type=Path, help="the CSV file (see samples/rates.csv)")
    imports.add_argument("--replace", action="store_true", help="delete every prefix not in the file")
    actions.add_parser("list", help="print the rates")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    database = open_store(settings)
    try:
        if args.action == "import":
            rows = rating.parse_rates_csv(args.csv.read_text(encoding="utf-8"), settings.store.currency)
            with database.transaction() as session:
                count = rating.import_rates(session, rows, replace_all=args.replace)
                total = len(rating.list_rates(session))
            print(f"imported {count} rates from {args.csv}; {total} in the price list")
            return 0
        with database.read() as session:
            lines = [_line(rate) for rate in rating.list_rates(session)]
        print("prefix,sms,voice,tts,currency,description")
        for line in lines:
            print(line)
        return 0
    finally:
        database.dispose()


def _line(rate: Rate) -> str:
    """One CSV line of the price list, in the import format (so `list > file` re-imports)."""
    out = io.StringIO()
    prices = [rating.format_price(p) if p is not None else "" for p in (rate.sms, rate.voice_minute,
                                                                         rate.tts_minute)]
    csv.writer(out, lineterminator="").writerow([rate.prefix, *prices, rate.currency, rate.description])
    return out.getvalue()
