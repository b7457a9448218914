"""`ivrgate prompt`: render a prompt (texts, voice URLs, local files, in the order given) to a telephony WAV.

    ivrgate prompt --text 'Hola, habla su dentista.' --language es --gender female \\
        --file jingle.mp3 --url https://example.org/outro.wav -o out.wav
    ivrgate prompt --json samples/prompts/vtts_sample.json -o out.wav

Prints the duration and where the WAV went (the content-addressed cache file when no -o is given).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from api.core.settings import Settings
from ivr.errors import InvalidPromptSpec
from ivr.fetch import UrlFetcher
from ivr.prompt import (
    AudioSegment,
    PromptRenderer,
    PromptSpec,
    Segment,
    TextSegment,
    UrlSegment,
    make_voice,
    spec_from_json,
)
from tts.base import GENDERS, LANGUAGES


class AppendSegment(argparse.Action):
    """Appends (kind, value) to one shared list, so --text/--url/--file keep their command-line order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        items = list(getattr(namespace, self.dest) or [])
        items.append((self.const, values))
        setattr(namespace, self.dest, items)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `prompt` sub-command."""
    parser = subparsers.add_parser(
        "prompt",
        help="render a prompt to a telephony WAV",
        description="Render texts, voice URLs and local audio files, in the order given, "
        "to one 16-bit 8 kHz mono WAV.",
    )
    add_segment_arguments(parser)
    parser.add_argument(
        "-o", "--output", metavar="WAV", help="where to write the WAV (default: leave it in the cache)"
    )
    parser.set_defaults(func=run)


def add_segment_arguments(parser: argparse.ArgumentParser) -> None:
    """The prompt options shared by `prompt` and `call`: --text/--url/--file (order kept), --json,
    --language, --gender, --allow-private."""
    for kind, meta, text in (
        ("text", "TEXT", "text to speak"),
        ("url", "URL", "http(s) voice file to fetch"),
        ("file", "FILE", "local audio file (wav, mp3, flac, ogg, ...)"),
    ):
        parser.add_argument(
            f"--{kind}", dest="segments", action=AppendSegment, const=kind, metavar=meta,
            help=f"{text} (repeatable; order kept)",
        )
    parser.add_argument(
        "--json", metavar="FILE", help='vtts spec: {"msg": [...], "language": ..., "gender": ...} or a list'
    )
    parser.add_argument("--language", choices=LANGUAGES, help="us (default) or es")
    parser.add_argument("--gender", choices=GENDERS, help="female (default) or male")
    parser.add_argument(
        "--allow-private", action="store_true",
        help="fetch from private and loopback addresses too (local testing only)",
    )
    parser.set_defaults(segments=None)


def build_spec(args: argparse.Namespace) -> PromptSpec:
    """The PromptSpec the options describe; --language and --gender override the JSON file's."""
    if args.json and args.segments:
        raise InvalidPromptSpec("give either --json or --text/--url/--file, not both")
    if args.json:
        spec = spec_from_json(_load_json(args.json))
        voice = make_voice(args.language, args.gender, spec.voice)
        return dataclasses.replace(spec, voice=voice)
    if not args.segments:
        raise InvalidPromptSpec("nothing to render: give --text, --url, --file or --json")
    segments = tuple(_segment(kind, value) for kind, value in args.segments)
    return PromptSpec(segments, make_voice(args.language, args.gender))


def _segment(kind: str, value: str) -> Segment:
    if kind == "text":
        return TextSegment(value)
    if kind == "url":
        return UrlSegment(value)
    return AudioSegment(path=Path(value), name=value)


def _load_json(name: str) -> object:
    try:
        with open(name, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise InvalidPromptSpec(f"cannot read {name}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidPromptSpec(f"{name} is not valid JSON: {exc}") from None


def make_renderer(settings: Settings, allow_private: bool = False) -> PromptRenderer:
    """A PromptRenderer on the configured cache directory and settings."""
    fetch = dataclasses.replace(settings.fetch, allow_private=True) if allow_private else settings.fetch
    return PromptRenderer(
        settings.cache_dir,
        fetcher=UrlFetcher(fetch),
        decode_limits=settings.decode,
        telephony=settings.telephony,
        assemble_settings=settings.assemble,
        tts=settings.tts,
        prompt=settings.prompt,
    )


def _copy_atomically(source: Path, target: Path) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, temp)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace, settings: Settings) -> int:
    spec = build_spec(args)
    rendered = make_renderer(settings, args.allow_private).render(spec)
    where = rendered.path
    if args.output:
        where = Path(args.output)
        _copy_atomically(rendered.path, where)
    print(f"prompt: {rendered.duration_s:.2f} s, written to {where}")
    return 0
