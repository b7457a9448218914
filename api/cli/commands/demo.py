"""`ivrgate demo`: the seed's dentist reminder, called for real to the built-in test phone.

It starts the test phone (`ivrgate phone`, a real SIP user agent on 127.0.0.1, in its own process:
pjsua2 allows one Endpoint per process), renders the reminder with the configured TTS engine, places
the call through an engine process, and prints each step and the status line the gateway stores,
e.g. `Voice call answered, duration 9 seconds. R = 1`. With `--calls N` it places N calls at once
through a pool of ceil(N / 4) engine processes to a phone of as many processes (4 calls each), prints
each call's status line, and succeeds only when every call ended with the pressed key.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

from api.cli.commands.call import place_call, print_report
from api.cli.commands.prompt import make_renderer
from api.core.settings import Settings
from coded.errors import CodedError
from ivr.dialer import CallJob, CallReport, run_call
from ivr.pool import EnginePool
from ivr.prompt import PromptSpec, RenderedPrompt, TextSegment, make_voice
from ivr.settings import rtp_range
from ivr.sip import MAX_CALLS
from tts.base import GENDERS, LANGUAGES

DENTIST_REMINDER = {
    "us": "Hello, this is dentist Adam Smith. Press 1 to confirm your appointment tomorrow at 9am, "
          "or press 2 to cancel the appointment. Press 9 to repeat this message.",
    "es": "Hola, le habla el dentista Adam Smith. Pulse 1 para confirmar su cita de mañana a las 9am, "
          "o pulse 2 para cancelarla. Pulse 9 para repetir este mensaje.",
}
"""The seed's appointment reminder (samples/prompts/dentist_*.txt hold the same texts)."""

DEMO_NUMBER = "12506063167"
PHONE_START_TIMEOUT_S = 20.0


class DemoError(CodedError, RuntimeError):
    """The demo could not run (a phone or engine that did not start, a call that did not end)."""

    status_text = "ERROR: DEMO FAILED"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo", help="call the built-in test phone with the dentist reminder and show the key it pressed",
        description="Start the built-in test phone on 127.0.0.1, call it with the seed's dentist "
        "reminder through a real SIP engine process, and print the captured key.")
    parser.add_argument("--press", default="1", help="keys the phone presses (default 1; try 91 to replay)")
    parser.add_argument("--mode", choices=("rfc4733", "info", "inband"), default="rfc4733",
                        help="how the phone sends its keys (default rfc4733)")
    parser.add_argument("--wait", type=float, default=3.0, help="seconds the phone listens before pressing")
    parser.add_argument("--language", choices=LANGUAGES, default="us")
    parser.add_argument("--gender", choices=GENDERS, default="female")
    parser.add_argument("--phone-port", type=int, default=5070, help="SIP port of the test phone")
    parser.add_argument("--calls", type=int, default=1,
                        help="calls placed at once (default 1; e.g. 20: 5 engine and 5 phone processes)")
    parser.set_defaults(func=run)


def phone_rtp_port(settings: Settings, calls: int) -> int:
    """The phone's first RTP port: just past the RTP ranges of the engines that place `calls` (one rule,
    ivr.settings.rtp_range), so however many calls the demo places, the two never share a port."""
    sip = settings.sip
    return rtp_range(sip.rtp_port, sip.rtp_ports_per_process, _processes(calls))[0]


class PhoneProcess:
    """`ivrgate phone` in a child process; its stdout lines are collected by a reader thread."""

    def __init__(self, args: argparse.Namespace, settings: Settings, record_dir: Path) -> None:
        command = [sys.executable, "-m", "api", "phone", "--port", str(args.phone_port),
                   "--processes", str(_processes(args.calls)),
                   "--rtp-port", str(phone_rtp_port(settings, args.calls)), "--press", args.press,
                   "--mode", args.mode, "--wait", str(args.wait), "--gap", "1.5", "--calls", str(args.calls),
                   "--json", "--record", str(record_dir)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.ready = threading.Event()
        self.calls: list[dict[str, Any]] = []
        self.finished = threading.Event()
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            if line.startswith("phone listening"):
                self.ready.set()
            elif line.startswith("{"):
                self.calls.append(json.loads(line))
        self.finished.set()
        self.ready.set()

    def wait_ready(self) -> None:
        if not self.ready.wait(PHONE_START_TIMEOUT_S) or self.process.poll() is not None:
            self.close()
            raise DemoError("the test phone did not start (is the port free? see the messages above)")

    def close(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is None:
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                self.process.wait(timeout_s)


def _for_mode(settings: Settings, mode: str) -> Settings:
    """Tones only count when the engine listens for them: the phone also offers telephone-event, so
    'auto' would leave in-band detection off; the inband demo turns it on for the call."""
    if mode != "inband":
        return settings
    return settings.model_copy(update={"sip": dataclasses.replace(settings.sip, inband_dtmf="always")})


def _processes(calls: int) -> int:
    """Processes (engines, and phones) for `calls` calls at once: 4 calls each."""
    return max(1, math.ceil(calls / MAX_CALLS))


async def place_calls(settings: Settings, jobs: list[CallJob]) -> list[CallReport]:
    """All jobs at once through a pool of enough engine processes."""
    pool = EnginePool(settings.sip, processes=_processes(len(jobs)))
    await pool.start()
    try:
        return list(await asyncio.gather(*(run_call(pool, job, settings.dialer) for job in jobs)))
    finally:
        await pool.stop()


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.calls < 1:
        raise DemoError("--calls must be at least 1")
    if args.calls > 1:
        return run_many(args, settings)
    rendered = demo_prompt(args, settings)
    with tempfile.TemporaryDirectory(prefix="ivrgate-demo-") as scratch:
        phone = PhoneProcess(args, settings, Path(scratch))
        phone.wait_ready()
        uri = f"sip:{DEMO_NUMBER}@127.0.0.1:{args.phone_port}"
        print(f"test phone: 127.0.0.1:{args.phone_port}, presses {args.press!r} by {args.mode} "
              f"{args.wait:.1f} s after answering")
        print(f"calling {uri}")
        try:
            job = CallJob(job_id="demo", uri=uri, prompt=rendered.path, response=True)
            report = asyncio.run(place_call(_for_mode(settings, args.mode), job))
        finally:
            phone.close()
    print_report(report, timeline=True)
    if phone.calls:
        heard = phone.calls[0]
        print(f"the phone pressed {heard.get('pressed')!r} and heard the prompt for {heard.get('seconds')} s")
    return 0 if report.outcome.digit == args.press[-1:] else 1


def demo_prompt(args: argparse.Namespace, settings: Settings) -> RenderedPrompt:
    """The seed's dentist reminder in the chosen language and gender, rendered or cached; says which file."""
    spec = PromptSpec((TextSegment(DENTIST_REMINDER[args.language]),), make_voice(args.language, args.gender))
    rendered = make_renderer(settings).render(spec)
    print(f"prompt: {rendered.duration_s:.1f} s of speech ({args.language}, {args.gender}), {rendered.path}")
    return rendered


def run_many(args: argparse.Namespace, settings: Settings) -> int:
    """`--calls N`: N calls at once to the phone; one status line each, then the tally."""
    rendered = demo_prompt(args, settings)
    processes = _processes(args.calls)
    with tempfile.TemporaryDirectory(prefix="ivrgate-demo-") as scratch:
        phone = PhoneProcess(args, settings, Path(scratch))
        phone.wait_ready()
        uri = f"sip:{DEMO_NUMBER}@127.0.0.1:{args.phone_port}"
        print(f"test phone: 127.0.0.1:{args.phone_port} ({processes} processes), presses {args.press!r} "
              f"by {args.mode} {args.wait:.1f} s after answering")
        print(f"calling {uri} {args.calls} times at once through {processes} engine processes")
        jobs = [CallJob(job_id=f"demo-{i + 1}", uri=uri, prompt=rendered.path, response=True)
                for i in range(args.calls)]
        try:
            reports = asyncio.run(place_calls(_for_mode(settings, args.mode), jobs))
        finally:
            phone.close()
    for report in reports:
        print(f"  {report.job.job_id:>8}  {report.outcome.text}")
    wanted = args.press[-1:]
    good = sum(r.outcome.answered and r.outcome.digit == wanted for r in reports)
    answered = sum(r.outcome.answered for r in reports)
    print(f"{answered} of {args.calls} calls answered, {good} with R = {wanted}")
    return 0 if good == args.calls else 1
