"""`ivrgate call URI --text ... [--response]`: render a prompt, place one real call, print the outcome.

    ivrgate call sip:12506063167@127.0.0.1:5070 --text 'Press 1 to confirm.' --response
    Voice call answered, duration 6 seconds. R = 1
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from api.cli.commands.prompt import add_segment_arguments, build_spec, make_renderer
from api.core.settings import Settings
from ivr.dialer import CallJob, CallReport, run_call
from ivr.pool import EnginePool


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "call", help="place one call and print its outcome",
        description="Render the prompt, call the SIP URI through one engine process, play the prompt, "
        "capture the key (9 replays) and print the status line the gateway would store.")
    parser.add_argument("uri", help="SIP URI to call, e.g. sip:12506063167@127.0.0.1:5070")
    add_segment_arguments(parser)
    parser.add_argument("--response", action="store_true", help="wait for and capture a key press")
    parser.add_argument("--repeat", type=int, default=0, help="extra plays of the prompt (default 0)")
    parser.add_argument("--caller-id", default="", help="From user part (a number)")
    parser.add_argument("--record", metavar="WAV", type=Path, help="record what the callee sends")
    parser.add_argument("--timeline", action="store_true", help="print every step of the call")
    parser.set_defaults(func=run)


async def place_call(settings: Settings, job: CallJob) -> CallReport:
    """Start a one-process engine pool, run the call to its end, stop the pool."""
    pool = EnginePool(settings.sip, processes=1)
    await pool.start()
    try:
        return await run_call(pool, job, settings.dialer)
    finally:
        await pool.stop()


def print_report(report: CallReport, *, timeline: bool) -> None:
    if timeline:
        for entry in report.timeline:
            print(f"  {entry.at_s:7.3f}  {entry.kind:<14} {entry.detail}")
    outcome = report.outcome
    if timeline and (outcome.sip_code or outcome.call_id):
        print(f"  SIP {outcome.sip_code or '-'}, Call-ID {outcome.call_id or '-'}")
    print(outcome.text)


def job_from_args(args: argparse.Namespace, prompt: Path) -> CallJob:
    return CallJob(job_id="cli", uri=args.uri, prompt=prompt, response=args.response, repeat=args.repeat,
                   caller_id=args.caller_id, record_to=args.record.resolve() if args.record else None)


def run(args: argparse.Namespace, settings: Settings) -> int:
    spec = build_spec(args)
    rendered = make_renderer(settings, args.allow_private).render(spec)
    job = job_from_args(args, rendered.path)
    report = asyncio.run(place_call(settings, job))
    print_report(report, timeline=args.timeline)
    sys.stdout.flush()
    return 0 if report.outcome.success else 1
