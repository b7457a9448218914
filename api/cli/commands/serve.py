"""`ivrgate serve`: the HTTP API, the SMTP gateway, the SMS node, the SIP engine pool and the voice worker
in one process (api.runtime.node.Node, NodeOptions.for_serve).

    ivrgate --data /srv/ivrgate serve                          # http://127.0.0.1:8080, SQLite in /srv/ivrgate
    ivrgate serve --host 0.0.0.0 --port 8443 --certfile cert.pem --keyfile key.pem
    IVRGATE_SIP__TRUNK_HOST=sip.trunk.example IVRGATE_SERVER__LOG_FORMAT=json ivrgate serve

At start-up the settings are checked (the trunk URI template and host, the certificate files, the SMTP
and SIP ports), the HTTP socket is bound, the store's migrations are applied (`ivrgate db upgrade`), then
the node starts its peers in order: callback sender, voice worker (engine pool), SMS node, SMTP, and last
uvicorn serving api.fronts.app.create_app (on uvloop when installed: 15 % less CPU per request than asyncio's
loop, docs/store.md); the "serving" line is printed once they all run. SIGTERM or SIGINT shut down
gracefully in the reverse order: no new connections, the SMS sender and the worker stop claiming, calls
in progress finish (or are cancelled: `worker.cancel_in_flight`), messages not yet dialled go back to the
queue, the binds close, the engines stop, the callback sender stops; exit 0.

`--http-processes N` (server.http_processes) starts N-1 more processes answering HTTP on the same
address, each on its own SO_REUSEPORT socket (the kernel spreads the connections over them), API only:
no worker, SMTP or SMPP, which stay in the first process (it polls the queue every
worker.poll_interval_s for what the others accepted). One that ends is started again; they stop with
the first process; on SQLite their writes take turns through `<database>.writer` (docs/store.md,
"Submission throughput").
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path

from api.cli.commands.user import open_store
from api.core.errors import GatewayError, StartupFailed
from api.core.phones import sip_uri
from api.core.settings import Settings, runs_sms_node, sms_configured
from api.runtime.logging_setup import configure_logging

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 2048
"""uvicorn's own default."""
WATCH_S = 1.0
"""How often serve checks that its other HTTP processes still run."""
RESTART_MIN_S = 1.0
RESTART_MAX_S = 30.0
PARENT_CHECK_S = 0.5
"""How often an additional HTTP process checks that the first one still runs."""
PROBE_NUMBER = "+12025550123"
"""A possible number the trunk template is tried with at start-up."""




def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `serve` sub-command."""
    parser = subparsers.add_parser(
        "serve", help="run the HTTP API, the SIP engines and the voice worker",
        description="Serve the legacy and v1 APIs, /healthz and /metrics, and dial queued voice messages.")
    parser.add_argument("--host", help="listen address (default: server.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default: server.port, 8080)")
    parser.add_argument("--certfile", help="PEM certificate: serve HTTPS (with --keyfile)")
    parser.add_argument("--keyfile", help="PEM private key of --certfile")
    parser.add_argument("--http-processes", type=int,
                        help="processes answering HTTP (default: server.http_processes, 1); the others "
                             "than the first serve the API only")
    parser.add_argument("--no-worker", action="store_true",
                        help="API only: no SIP engines, no calls (another node's worker dials)")
    parser.set_defaults(func=run)


def with_arguments(settings: Settings, args: argparse.Namespace) -> Settings:
    """The settings with the command line's overrides (validated like the rest)."""
    names = ("host", "port", "certfile", "keyfile", "http_processes")
    given = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    update: dict[str, object] = {}
    if given:
        try:
            update["server"] = dataclasses.replace(settings.server, **given)  # type: ignore[arg-type]
        except ValueError as exc:
            raise StartupFailed(f"server: {exc}") from None
    if args.no_worker:
        update["worker"] = dataclasses.replace(settings.worker, enabled=False)
    return settings.model_copy(update=update) if update else settings


def check_startup(settings: Settings) -> None:
    """Refuse settings that would only fail later: a trunk that cannot be dialled, missing cert files,
    an SMTP or SIP port another program holds (checked before anything starts, so nothing is left
    half-started; a port taken in the moment between is still reported in one line by the node,
    api.runtime.node)."""
    server = settings.server
    for name in ("certfile", "keyfile"):
        path = getattr(server, name)
        if path and not Path(path).is_file():
            raise StartupFailed(f"server.{name}: no such file: {path}")
    if settings.worker.enabled:
        try:
            sip_uri(PROBE_NUMBER, settings.sip.uri_template, settings.sip.trunk_host)
        except GatewayError as exc:
            hint = "set IVRGATE_SIP__TRUNK_HOST, or serve --no-worker"
            raise StartupFailed(f"sip: {exc.detail} ({hint})") from None
    check_ports(settings)


def check_ports(settings: Settings, *, smtp: bool = True) -> None:
    """StartupFailed naming the first setting whose port another program holds (SMTP, each SIP engine)."""
    for setting, host, port, kind in listeners(settings, smtp=smtp):
        why = why_unbindable(host, port, kind)
        if why:
            raise StartupFailed.port_taken(setting, host, port, kind, why)


def listeners(settings: Settings, *, smtp: bool = True) -> list[tuple[str, str, int, str]]:
    """(setting, host, port, udp|tcp) of every port this node will listen on besides HTTP."""
    found: list[tuple[str, str, int, str]] = []
    if smtp and settings.smtp.enabled and settings.smtp.port:
        found.append(("smtp.port", settings.smtp.host, settings.smtp.port, "tcp"))
    if settings.worker.enabled:
        sip = settings.sip
        found += [("sip.port", sip.bind_address, sip.port + i, sip.transport) for i in range(sip.processes)]
    return found


def why_unbindable(host: str, port: int, kind: str) -> str:
    """Why (host, port) cannot be bound now, or '' when it can (the probe socket is closed at once)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM) as probe:
        if kind != "udp":
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listener will
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return ""


SMS_NOT_CONFIGURED = (
    "SMS is not configured: no SMSC is set (IVRGATE_SMS__SYSTEM_ID, with IVRGATE_SMS__HOST and "
    "IVRGATE_SMS__PASSWORD), so SMS submissions (matrix, v1, SMTP, GUI) are refused with "
    "500 ERROR: SMS NOT CONFIGURED and nothing is charged; docs/sms.md explains the setup")


def log_sms_setup(settings: Settings) -> None:
    """Say once, at start-up, in plain words, that SMS will be refused when no SMSC is configured."""
    if not sms_configured(settings):
        log.warning(SMS_NOT_CONFIGURED)
    elif not runs_sms_node(settings):
        log.info("SMS accepted here and sent by another node (sms_service.enabled is false)")


def api_only(settings: Settings) -> Settings:
    """The settings of an additional HTTP process: the API, without the worker, SMTP or SMPP."""
    return settings.model_copy(update={
        "worker": dataclasses.replace(settings.worker, enabled=False),
        "smtp": dataclasses.replace(settings.smtp, enabled=False),
        "sms_service": dataclasses.replace(settings.sms_service, enabled=False),
    })


def shared_socket(host: str, port: int, *, reuse_port: bool = True) -> socket.socket:
    """A listening TCP socket on (host, port) that other processes may bind too (SO_REUSEPORT): the kernel
    hands each new connection to one of them, so no process takes every connection of a burst. Without
    `reuse_port`, a socket of this process alone (a second server on the port is refused)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and without it
    # a response written in two parts waits for the client's delayed ACK (40 ms a request)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def serve_api(settings: Settings, port: int, parent: int, level: str) -> None:
    """An additional HTTP process (spawned): a node serving the API only, on its own socket of the first
    process's address, until SIGTERM, SIGINT or the first process's end."""
    configure_logging(settings.server.log_format, level)
    sock = shared_socket(settings.server.host, port)
    done = threading.Event()

    def watch(stop: Callable[[], None]) -> None:
        def watch_parent() -> None:
            while os.getppid() == parent:
                if done.wait(PARENT_CHECK_S):
                    return
            stop()

        threading.Thread(target=watch_parent, name="ivrgate-parent-watch", daemon=True).start()

    from api.runtime.node import Node, NodeOptions  # FastAPI and the routers load only when serving

    try:
        Node(settings, NodeOptions(http=True)).run(sockets=[sock], watch=watch)
    finally:
        done.set()
        sock.close()


class HttpProcesses:
    """The additional API processes of `serve`: started, kept running (one that ends while serve runs is
    started again, after RESTART_MIN_S doubling up to RESTART_MAX_S while it keeps failing within a
    minute), and stopped: SIGTERM, then SIGKILL at one shutdown deadline for them all."""

    def __init__(self, settings: Settings, port: int, level: str) -> None:
        self._args = (api_only(settings), port, os.getpid(), level)
        self._count = settings.server.http_processes - 1
        self._shutdown_s = settings.worker.shutdown_timeout_s
        self._spawn = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.processes: list[BaseProcess] = []
        self.restarts = 0

    def _new(self, slot: int) -> BaseProcess:
        process = self._spawn.Process(target=serve_api, args=self._args, name=f"ivrgate-http-{slot + 1}")
        process.start()
        return process

    def start(self) -> None:
        with self._lock:
            self.processes = [self._new(slot) for slot in range(self._count)]
        threading.Thread(target=self._watch, name="ivrgate-http-watch", daemon=True).start()

    def _watch(self) -> None:
        delays = [RESTART_MIN_S] * self._count
        started = [time.monotonic()] * self._count
        while not self._stopping.wait(WATCH_S):
            for slot in range(self._count):
                with self._lock:
                    process = self.processes[slot]
                    if self._stopping.is_set() or process.is_alive():
                        continue
                    process.join()
                    log.warning("%s (pid %s) ended with %s; starting it again in %.0f s", process.name,
                                process.pid, process.exitcode, delays[slot])
                if self._stopping.wait(delays[slot]):
                    return
                lived = time.monotonic() - started[slot]
                delays[slot] = RESTART_MIN_S if lived > 60 else min(delays[slot] * 2, RESTART_MAX_S)
                with self._lock:
                    if self._stopping.is_set():
                        return
                    self.processes[slot] = self._new(slot)
                    self.restarts += 1
                started[slot] = time.monotonic()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            processes = list(self.processes)
        for process in processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + self._shutdown_s  # one deadline for them all
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
            if process.exitcode:  # 0: a graceful stop; -15: SIGTERM before uvicorn's handlers were set
                log.warning("%s (pid %s) ended with %s", process.name, process.pid, process.exitcode)


@contextlib.contextmanager
def more_processes(settings: Settings, port: int, level: str) -> Iterator[HttpProcesses]:
    """settings.server.http_processes - 1 API processes on `port` (HttpProcesses) while the block runs."""
    processes = HttpProcesses(settings, port, level)
    try:
        processes.start()
        yield processes
    finally:
        processes.stop()


def http_socket(settings: Settings) -> socket.socket:
    """serve's HTTP listener, bound before anything else starts (StartupFailed when it cannot be)."""
    server = settings.server
    try:
        return shared_socket(server.host, server.port, reuse_port=server.http_processes > 1)
    except OSError as exc:
        raise StartupFailed.port_taken("server.port", server.host, server.port, "tcp", exc) from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings = with_arguments(settings, args)
    level = "DEBUG" if args.verbose >= 2 else settings.server.log_level
    configure_logging(settings.server.log_format, level)
    check_startup(settings)
    log_sms_setup(settings)
    with http_socket(settings) as sock:
        open_store(settings).dispose()  # migrations, before anything serves
        port = sock.getsockname()[1]
        scheme = "https" if settings.server.certfile else "http"
        worker = "with the voice worker" if settings.worker.enabled else "API only"
        count = settings.server.http_processes
        processes = f"{count} HTTP process{'es' * (count > 1)}"
        banner = (f"ivrgate: serving {scheme}://{settings.server.host}:{port} "
                  f"(data {settings.data_dir}, {worker}, {processes})")
        from api.runtime.node import Node, NodeOptions  # FastAPI and the routers load only when serving

        node = Node(settings, NodeOptions.for_serve(settings))
        with contextlib.ExitStack() as stack:
            if count > 1:
                stack.enter_context(more_processes(settings, port, level))
            node.run(sockets=[sock], ready=lambda _: print(banner, flush=True))
    sys.stdout.flush()
    return 0
