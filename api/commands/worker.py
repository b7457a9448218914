"""`ivrgate worker`: a calling node without HTTP: the SIP engine pool, the voice worker, the
status-callback sender and, when SMS is configured, the SMS node (ESME, SMS sender, incoming SMS)
against the configured store, until SIGTERM or SIGINT.

    IVRGATE_DATABASE_URL=postgresql://ivrgate:secret@db.example/ivrgate \\
    IVRGATE_SIP__TRUNK_HOST=sip.trunk.example ivrgate worker

With several nodes sharing PostgreSQL, run `ivrgate serve --no-worker` behind the load balancer and
`ivrgate worker` on the calling nodes: messages are claimed with leases, so any node may dial any
message and a node that dies leaves its messages to the others (docs/operations.md). A worker-only node
is not woken by submissions on other nodes; it polls every `worker.poll_interval_s` (its SMS sender
every `sms_service.poll_interval_s`). SMS scale out the same way: each worker with `sms.system_id` set
binds to the SMSC and claims queued SMS with leases; a receipt may reach any node (the store matches it).

Shutdown is the same as `ivrgate serve`'s: the worker stops claiming, messages not yet dialled go back
to the queue, calls in progress finish (or are cancelled: `worker.cancel_in_flight`), the callback
sender stops after the POST in flight, the engines stop; exit status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys
from collections.abc import Callable

from api.callbacks import sending_callbacks
from api.commands.serve import PROBE_NUMBER, check_ports
from api.commands.user import open_store
from api.errors import GatewayError, StartupFailed
from api.logging_setup import configure_logging
from api.phones import sip_uri
from api.settings import Settings, runs_sms_node
from store.db import Database, resolve_url

READY = ("ivrgate: worker {worker_id} ready ({engines} engine processes, {database}, callbacks {callbacks}, "
         "sms {sms})")
"""The line printed once the engines run (scripts and tests wait for it)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `worker` sub-command."""
    parser = subparsers.add_parser(
        "worker", help="run a calling node: SIP engines, voice worker, callback sender, SMS (no HTTP)",
        description="Dial queued voice messages from the configured store, send status callbacks and, "
        "when IVRGATE_SMS__SYSTEM_ID is set, send and receive SMS, without serving HTTP (for nodes "
        "behind `ivrgate serve --no-worker`).")
    parser.add_argument("--worker-id", help="names this worker's leases (default: worker.worker_id, "
                        "else <host>:<pid>)")
    parser.add_argument("--no-callbacks", action="store_true",
                        help="do not send status callbacks from this node")
    parser.set_defaults(func=run)


def check_trunk(settings: Settings) -> None:
    """Refuse a trunk URI template or host that cannot produce a SIP URI (StartupFailed)."""
    try:
        sip_uri(PROBE_NUMBER, settings.sip.uri_template, settings.sip.trunk_host)
    except GatewayError as exc:
        raise StartupFailed(f"sip: {exc.detail} (set IVRGATE_SIP__TRUNK_HOST)") from None


async def run_node(settings: Settings, db: Database, stop: asyncio.Event, *, callbacks: bool = True,
                   ready: Callable[[str], None] | None = None) -> None:
    """Run the engine pool, the voice worker, (with `callbacks`) the callback sender and (when
    `runs_sms_node(settings)`) the SMS node on `db` until `stop` is set, then shut them down gracefully;
    `ready` receives the READY line once they run."""
    from api.service import Gateway
    from api.sms_node import running_sms
    from api.worker import running_worker  # pjsua2's side loads only here

    async with contextlib.AsyncExitStack() as stack:
        if callbacks:
            await stack.enter_async_context(sending_callbacks(db, settings.callbacks, settings.data_dir))
        node = await stack.enter_async_context(running_worker(settings, db))
        sms = runs_sms_node(settings)
        if sms:
            # the SMS sender's tts=1 fallback submits through a Gateway, which wakes this voice worker
            gateway = Gateway(settings, db, wake=node.worker.wake)
            stack.callback(gateway.close)
            await stack.enter_async_context(running_sms(settings, gateway))
        if ready is not None:
            ready(READY.format(worker_id=node.worker.worker_id, engines=len(node.pool.pids),
                               database=db.dialect, callbacks="on" if callbacks else "off",
                               sms="on" if sms else "off"))
        await stop.wait()


async def _serve(settings: Settings, callbacks: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    db = Database.open(resolve_url(settings.store.database_url, settings.data_dir),
                       settings.store.sqlite_busy_timeout_s)
    try:
        await run_node(settings, db, stop, callbacks=callbacks, ready=lambda line: print(line, flush=True))
    finally:
        db.dispose()


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.worker_id:
        settings = settings.model_copy(
            update={"worker": dataclasses.replace(settings.worker, worker_id=args.worker_id)})
    level = "DEBUG" if args.verbose >= 2 else settings.server.log_level
    configure_logging(settings.server.log_format, level)
    check_trunk(settings)
    check_ports(settings, smtp=False)  # the engines' SIP ports, before anything starts
    open_store(settings).dispose()  # migrations, before anything claims
    asyncio.run(_serve(settings, callbacks=not args.no_callbacks))
    sys.stdout.flush()
    return 0
