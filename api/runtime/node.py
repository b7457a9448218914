"""The process of `ivrgate serve` and `ivrgate worker`: one composition root that starts the node's
services as peers, in order, and stops them in the reverse order.

    node = Node(settings, NodeOptions.for_serve(settings))     # `ivrgate serve`
    node.run(sockets=[http_socket], ready=lambda node: print("serving"))

    node = Node(settings, NodeOptions.for_worker(settings))    # `ivrgate worker`: no HTTP, no SMTP
    node.run(ready=lambda node: print(node.voice.worker.worker_id, "ready"))

The peers, each optional (NodeOptions), in start-up order:

    callbacks   the status-callback sender (api.runtime.callbacks), in a thread of its own
    voice       the SIP engine pool and the voice worker (api.runtime.worker)
    sms         the SMPP binds, the SMS sender and the incoming-SMS handler (api.runtime.sms_node)
    smtp        the SMTP gateway (api.fronts.smtp)
    http        uvicorn serving the FastAPI app (api.fronts.app), which only serves: it starts nothing

The fronts start last, so nothing is accepted before the services that carry it run. Shutdown (SIGTERM or
SIGINT) goes the other way: the fronts stop taking work first (HTTP closes its listener and answers the
requests in progress, SMTP answers the mails in progress), then the SMS sender stops claiming and gets the
answers of the parts in flight before it unbinds, the voice worker stops claiming, finishes (or cancels)
its calls and releases its leases before the engines stop, and the callback sender stops after the POST in
flight; last the gateway writes its last batch and the database closes. Each step is logged
(`node: <peer> stopped`). A peer that fails to start stops the ones started before it, and the failure
is one line naming its setting (StartupFailed).

Every submission on this node wakes its voice worker and SMS sender at once (`Node.wake`); a node without
them is not woken and others poll the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import uvicorn

from api.core.errors import StartupFailed
from api.core.service import Gateway
from api.core.settings import Settings, runs_sms_node
from api.fronts.app import App, Wake, create_app, open_database
from api.fronts.ops import OpsContext
from api.fronts.smtp import SmtpServer, running_smtp
from api.runtime.callbacks import CallbackThread, sending_callbacks
from api.runtime.sms_node import SmsNode, running_sms
from coded.errors import CodedError
from store.db import Database

log = logging.getLogger(__name__)

T = TypeVar("T")

SIGNALS = (signal.SIGTERM, signal.SIGINT)
"""The signals that stop a node gracefully."""


@dataclass(frozen=True)
class NodeOptions:
    """Which peers a node runs. `http` builds the app (served by the node when it is given sockets)."""

    http: bool = False
    smtp: bool = False
    voice: bool = False
    callbacks: bool = False
    sms: bool = False

    @classmethod
    def for_serve(cls, settings: Settings) -> NodeOptions:
        """`ivrgate serve`: HTTP; SMTP when smtp.enabled; the voice worker unless `--no-worker`
        (worker.enabled); the SMS node when this process binds (api.core.settings.runs_sms_node); the
        callback sender with either of them (both write status callbacks)."""
        sms = runs_sms_node(settings)
        voice = settings.worker.enabled
        return cls(http=True, smtp=settings.smtp.enabled, voice=voice, callbacks=voice or sms, sms=sms)

    @classmethod
    def for_worker(cls, settings: Settings, *, callbacks: bool = True) -> NodeOptions:
        """`ivrgate worker`: no fronts; the voice worker, the callback sender (unless `--no-callbacks`)
        and the SMS node when this process binds."""
        return cls(voice=True, callbacks=callbacks, sms=runs_sms_node(settings))

    def peers(self) -> list[str]:
        """The peers' names in start-up order (shutdown is the reverse)."""
        order = ("callbacks", "voice", "sms", "smtp", "http")
        return [name for name in order if getattr(self, name)]


def one_line(exc: BaseException) -> str:
    """A start-up failure in one line that names the setting it comes from."""
    from ivr.pool import EngineStartError  # the SIP side loads only when it failed

    if isinstance(exc, StartupFailed):
        return exc.detail
    if isinstance(exc, EngineStartError):
        return f"sip.port: {exc.detail}"
    detail = (exc.detail if isinstance(exc, CodedError) else str(exc)) or type(exc).__name__
    return f"{type(exc).__name__}: {detail}"


class StartupGuard:
    """The app as uvicorn runs it, with start-up failures in one line: a lifespan that raises while
    starting is reported by `failure` (its one_line), not by a traceback in uvicorn's log. Whatever
    the lifespan had started is stopped by its own exit stack before the failure is reported."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.failure = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        failed = False

        async def send_startup(message: Any) -> None:
            nonlocal failed
            if message["type"] == "lifespan.startup.failed":
                failed = True  # sent below, without the traceback text
                return
            await send(message)

        try:
            await self.app(scope, receive, send_startup)
        except BaseException as exc:  # every start-up failure becomes one line
            if not failed:
                raise
            self.failure = one_line(exc)
        if failed:
            await send({"type": "lifespan.startup.failed", "message": ""})


class _QuietStartupFailure(logging.Filter):
    """Drops uvicorn's own 'Application startup failed. Exiting.': the node says why in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Application startup failed")


class HttpServer(uvicorn.Server):
    """uvicorn as one peer of a node: no signal handlers of its own (the node's stop it, through
    `should_exit`), and a failed start-up ends `serve` with `started` False instead of uvicorn's
    sys.exit (HttpServer.serving turns it into StartupFailed)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.up = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # SIGTERM and SIGINT are the node's (Node.run)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        except SystemExit:  # uvicorn's way out of a failed start-up; `started` stays False
            self.should_exit = True
        finally:
            self.up.set()

    @asynccontextmanager
    async def serving(self, sockets: list[socket.socket],
                      on_end: Callable[[], None] | None = None) -> AsyncIterator[HttpServer]:
        """Serve on `sockets` (bound by the caller) for the length of the block; StartupFailed (one
        line) when the app could not start; `on_end` is called if the server ends before the block
        does. On exit: no new connections, the requests in progress are answered, then the block ends."""
        quiet = _QuietStartupFailure()
        logging.getLogger("uvicorn.error").addFilter(quiet)
        task = asyncio.create_task(self.serve(sockets=sockets), name="http")
        try:
            up = asyncio.create_task(self.up.wait())
            await asyncio.wait({task, up}, return_when=asyncio.FIRST_COMPLETED)
            up.cancel()
            if not self.started:
                self.should_exit = True
                await task
                app = self.config.app
                failure = app.failure if isinstance(app, StartupGuard) else ""
                raise StartupFailed(failure or "the application did not start (see the log above)")
            if on_end is not None:  # uvicorn ending on its own (not through should_exit) ends the node
                task.add_done_callback(lambda _: None if self.should_exit else on_end())
            try:
                yield self
            finally:
                self.should_exit = True
                await task
        finally:
            logging.getLogger("uvicorn.error").removeFilter(quiet)


def http_config(settings: Settings, app: App) -> uvicorn.Config:
    """uvicorn's configuration of `app`: our logging (log_config=None), HTTPS when a certificate is set,
    the event loop uvicorn picks (uvloop when installed: 15 % less CPU per request, docs/store.md)."""
    server = settings.server
    return uvicorn.Config(
        StartupGuard(app), host=server.host, port=server.port, loop="auto", lifespan="on", log_config=None,
        access_log=server.access_log, server_header=False,
        ssl_certfile=server.certfile or None, ssl_keyfile=server.keyfile or None)


@asynccontextmanager
async def _peer(name: str, running: AbstractAsyncContextManager[T]) -> AsyncIterator[T]:
    """`running` as a named peer: its start and its stop logged."""
    async with running as value:
        log.info("node: %s started", name)
        try:
            yield value
        finally:
            log.info("node: stopping %s", name)
    log.info("node: %s stopped", name)


class Node:
    """One process's services (NodeOptions), on one Gateway and its database, started as peers."""

    def __init__(self, settings: Settings, options: NodeOptions, *, database: Database | None = None) -> None:
        """The node on the settings' database, or on `database` (its owner disposes it)."""
        self.settings, self.options = settings, options
        self.wake = Wake()
        """Wakes this node's voice worker and SMS sender; the gateway calls it on every submission."""
        self._owns_database = database is None
        db = database if database is not None else open_database(settings)
        self.gateway = Gateway(settings, db, wake=self.wake)
        self.app: App | None = create_app(settings, self.gateway) if options.http else None
        self.ops: OpsContext | None = self.app.state.ops if self.app is not None else None
        self.callbacks: CallbackThread | None = None
        self.voice: Any = None
        """The running api.runtime.worker.WorkerNode (the SIP side loads only on a calling node)."""
        self.sms: SmsNode | None = None
        self.smtp: SmtpServer | None = None
        self.http: HttpServer | None = None
        self._stop: asyncio.Event | None = None

    def stop(self) -> None:
        """Ask a node started by `run` to shut down (on its loop's thread; SIGTERM and SIGINT do this)."""
        if self._stop is not None:
            self._stop.set()

    @asynccontextmanager
    async def running(self, sockets: list[socket.socket] | None = None) -> AsyncIterator[Node]:
        """Start the peers in order (the app is served on `sockets` when given; without them someone
        else serves `app`, e.g. a test client); on exit stop them in the reverse order. StartupFailed
        (one line) when a peer cannot start, the ones started before it stopped again."""
        async with contextlib.AsyncExitStack() as stack:
            try:
                await self._start(stack, sockets)
            except StartupFailed:
                raise
            except Exception as exc:
                raise StartupFailed(one_line(exc)) from exc
            log.info("node: up (%s)", ", ".join(self.options.peers()) or "nothing")
            yield self
            log.info("node: shutting down")
        log.info("node: down")

    async def _start(self, stack: contextlib.AsyncExitStack, sockets: list[socket.socket] | None) -> None:
        settings, options, db = self.settings, self.options, self.gateway.db
        if options.callbacks:
            self.callbacks = await stack.enter_async_context(
                _peer("callbacks", sending_callbacks(db, settings.callbacks, settings.data_dir)))
            if self.app is not None:
                self.app.state.callback_secrets = self.callbacks.secrets  # what /v1/callbacks/secret shows
            stack.callback(setattr, self, "callbacks", None)
        if options.voice:
            from api.runtime.worker import running_worker  # pjsua2's side loads only on a calling node

            metrics = self.ops.metrics if self.ops is not None else None
            self.voice = await stack.enter_async_context(
                _peer("voice", running_worker(settings, db, metrics=metrics)))
            stack.enter_context(self._woken(self.voice.worker.wake))
            if self.ops is not None:
                self.ops.pool, self.ops.worker = self.voice.pool, self.voice.worker
            stack.callback(self._forget, "voice")
        if options.sms:
            self.sms = await stack.enter_async_context(_peer("sms", running_sms(settings, self.gateway)))
            stack.enter_context(self._woken(self.sms.sender.wake))
            if self.ops is not None:
                self.ops.sms = self.sms.esme
            stack.callback(self._forget, "sms")
        if options.smtp:
            self.smtp = await stack.enter_async_context(
                _peer("smtp", running_smtp(settings.smtp, self.gateway)))
            stack.callback(setattr, self, "smtp", None)
        if options.http and sockets is not None:
            assert self.app is not None
            server = HttpServer(http_config(settings, self.app))
            self.http = await stack.enter_async_context(_peer("http", server.serving(sockets, self.stop)))
            stack.callback(setattr, self, "http", None)

    @contextlib.contextmanager
    def _woken(self, target: Callable[[], None]) -> Iterator[None]:
        """`target` is called on every submission while the block runs."""
        self.wake.targets.append(target)
        try:
            yield
        finally:
            self.wake.targets.remove(target)

    def _forget(self, peer: str) -> None:
        """A stopped peer is no longer reported (/healthz, /metrics)."""
        setattr(self, peer, None)
        if self.ops is None:
            return
        if peer == "voice":
            self.ops.pool = self.ops.worker = None
        elif peer == "sms":
            self.ops.sms = None

    def close(self) -> None:
        """After the peers stopped: the gateway's last batch of submissions, then the database (when the
        node opened it)."""
        try:
            self.gateway.close()
        finally:
            if self._owns_database:
                self.gateway.db.dispose()

    def run(self, *, sockets: list[socket.socket] | None = None, ready: Callable[[Node], None] | None = None,
            watch: Callable[[Callable[[], None]], None] | None = None) -> None:
        """Run the node in this process until SIGTERM or SIGINT (or until `watch`, given the node's stop
        function, calls it from any thread), then shut down gracefully and close. `ready` is called
        once every peer runs (the banner, the ready line). On the event loop uvicorn picks when the
        node serves HTTP, else asyncio's."""
        factory = http_config(self.settings, self.app).get_loop_factory() if self.app is not None else None
        try:
            with asyncio.Runner(loop_factory=factory) as runner:
                runner.run(self._main(sockets, ready, watch))
        finally:
            self.close()

    async def _main(self, sockets: list[socket.socket] | None, ready: Callable[[Node], None] | None,
                    watch: Callable[[Callable[[], None]], None] | None) -> None:
        loop = asyncio.get_running_loop()
        stop = self._stop = asyncio.Event()

        def on_signal(sig: signal.Signals) -> None:
            log.info("node: %s received", sig.name)
            if stop.is_set() and sig == signal.SIGINT and self.http is not None:
                self.http.force_exit = True  # a second Ctrl-C: HTTP stops without waiting for its clients
            stop.set()

        for sig in SIGNALS:
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            if watch is not None:

                def stop_soon() -> None:
                    with contextlib.suppress(RuntimeError):  # the loop has closed: the node is down
                        loop.call_soon_threadsafe(stop.set)

                watch(stop_soon)
            async with self.running(sockets):
                if ready is not None:
                    ready(self)
                await stop.wait()
        finally:
            self._stop = None
            for sig in SIGNALS:
                loop.remove_signal_handler(sig)
