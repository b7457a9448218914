"""The `ivrgate` command. Each sub-command lives in api/cli/commands/<name>.py and exposes
`register(subparsers)`, which adds its parser and sets `func(args, settings) -> int`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from api.core.settings import SettingsError, load_settings
from coded.errors import CodedError

COMMANDS = ("serve", "worker", "demo", "call", "phone", "prompt", "dtmf", "db", "user", "number", "rates")
"""Modules of api.cli.commands, in the order `ivrgate --help` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivrgate", description="Self-hosted voice, TTS and SMS gateway.")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (also IVRGATE_CONFIG)")
    parser.add_argument("--data", metavar="DIR", help="data directory (also IVRGATE_DATA_DIR)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"api.cli.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {"data_dir": args.data} if args.data else {}
    try:
        settings = load_settings(args.config, **overrides)
    except SettingsError as exc:
        print(f"ivrgate: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args, settings))
    except KeyboardInterrupt:
        return 130
    except CodedError as exc:
        print(f"ivrgate: {exc.status_text}: {exc.detail}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
