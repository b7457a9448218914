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

The process is a node (api.runtime.node.Node, NodeOptions.for_worker) without the HTTP and SMTP fronts: its
peers start in the order `ivrgate serve` starts them (callback sender, engine pool and voice worker, SMS
node) and the READY line is printed once they all run. Shutdown is the same as `ivrgate serve`'s, in
the reverse order: the SMS sender stops claiming and unbinds after the answers in flight, the worker
stops claiming, messages not yet dialled go back to the queue, calls in progress finish (or are
cancelled: `worker.cancel_in_flight`), the engines stop, the callback sender stops after the POST in
flight; exit status 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING

from api.cli.commands.serve import PROBE_NUMBER, check_ports
from api.cli.commands.user import open_store
from api.core.errors import GatewayError, StartupFailed
from api.core.phones import sip_uri
from api.core.settings import Settings
from api.runtime.logging_setup import configure_logging

if TYPE_CHECKING:
    from api.runtime.node import Node

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


def ready_line(node: Node) -> str:
    """The READY line of a running worker node."""
    voice = node.voice
    return READY.format(worker_id=voice.worker.worker_id, engines=len(voice.pool.pids),
                        database=node.gateway.db.dialect, callbacks="on" if node.options.callbacks else "off",
                        sms="on" if node.options.sms else "off")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.worker_id:
        settings = settings.model_copy(
            update={"worker": dataclasses.replace(settings.worker, worker_id=args.worker_id)})
    level = "DEBUG" if args.verbose >= 2 else settings.server.log_level
    configure_logging(settings.server.log_format, level)
    check_trunk(settings)
    check_ports(settings, smtp=False)  # the engines' SIP ports, before anything starts
    open_store(settings).dispose()  # migrations, before anything claims
    from api.runtime.node import Node, NodeOptions  # the node's modules load only when it runs

    node = Node(settings, NodeOptions.for_worker(settings, callbacks=not args.no_callbacks))
    node.run(ready=lambda running: print(ready_line(running), flush=True))
    sys.stdout.flush()
    return 0
