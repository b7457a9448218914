"""A supervised pool of SIP engine processes (`ivr.engine`), driven from asyncio.

pjsua2 wheels carry at most 4 calls per process, so the pool runs N lean engine processes, engine i on
SIP port `settings.port + i` with its own RTP range (`ivr.settings.rtp_range`: disjoint ranges),
and dispatches each call to the engine with the most free slots (waiting while all are busy). Events come
back per call through `CallHandle.events()`. An engine that dies fails only its own calls (each gets a
synthetic 'disconnected' with reason 'engine crashed' and no SIP code) and is restarted with backoff,
within a bounded restart rate; an engine that stops answering pings is killed and treated the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ivr.dialer import ENGINE_CRASHED
from ivr.engine import (
    Command,
    EngineProtocolError,
    Fatal,
    Pong,
    Ready,
    decode_event,
    encode_command,
    make_command,
    settings_to_json,
)
from ivr.errors import IvrError
from ivr.events import SipEvent
from ivr.settings import SipSettings, rtp_range

log = logging.getLogger(__name__)

CRASHED = ENGINE_CRASHED
"""Reason of the synthetic 'disconnected' event of a call whose engine process died."""
STOPPED = "engine stopped"
"""Reason of the synthetic 'disconnected' event of a call still open when its engine was stopped."""


class EngineStartError(IvrError):
    """An engine process could not be started (it said why in a 'fatal' event, exited, or timed out)."""

    status_text = "ERROR: SIP ENGINE FAILED TO START"


class EnginePoolUnavailable(IvrError):
    """No engine can take calls: the pool is stopped, or every engine exceeded its restart budget."""

    status_text = "ERROR: NO SIP ENGINE AVAILABLE"


@dataclass(frozen=True)
class RestartPolicy:
    """How the pool restarts engines that died: backoff doubling from `backoff_s`, at most
    `max_restarts` restarts of one engine within `window_s`, after which that engine is given up."""

    max_restarts: int = 5
    window_s: float = 60.0
    backoff_s: float = 0.2
    max_backoff_s: float = 10.0
    ready_timeout_s: float = 15.0
    """How long a new engine may take to report 'ready'."""
    ping_interval_s: float | None = 10.0
    """How often each engine is pinged; None: never (a hung engine is then not detected)."""
    ping_timeout_s: float = 5.0


def restart_delay(starts: Sequence[float], now: float, policy: RestartPolicy) -> float | None:
    """Seconds to wait before restarting an engine started at times `starts` (the first start included),
    or None when it has been restarted `policy.max_restarts` times within `policy.window_s`."""
    restarts = sum(1 for t in starts if now - t < policy.window_s) - 1
    if restarts >= policy.max_restarts:
        return None
    return float(min(policy.backoff_s * 2 ** max(restarts, 0), policy.max_backoff_s))


@dataclass(eq=False)
class _Engine:
    """One slot of the pool and the process currently filling it."""

    index: int
    port: int
    rtp_port: int
    process: asyncio.subprocess.Process | None = None
    capacity: int = 0
    calls: dict[str, CallHandle] = field(default_factory=dict)
    starts: list[float] = field(default_factory=list)
    given_up: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    pongs: dict[int, asyncio.Future[None]] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.process is not None and self.process.returncode is None and self.capacity > 0

    def free(self) -> int:
        return self.capacity - len(self.calls) if self.ready else 0


class CallHandle:
    """One call placed through the pool: its events, and the commands that act on it."""

    def __init__(self, ref: str, pool: EnginePool, engine: _Engine) -> None:
        self.ref = ref
        """Unique within the pool; the engine's user agent knows the call by it."""
        self.engine_index = engine.index
        self.engine_pid = engine.process.pid if engine.process else None
        self._pool = pool
        self._process = engine.process
        self._queue: asyncio.Queue[SipEvent] = asyncio.Queue()
        self._closed = False
        self.started = False
        """True once the engine reported 'calling' (the INVITE went out)."""
        self.final: SipEvent | None = None
        """The 'disconnected' event, once it arrived."""

    @property
    def closed(self) -> bool:
        """True once the call's 'disconnected' event arrived (its slot is free again)."""
        return self._closed

    async def events(self) -> AsyncIterator[SipEvent]:
        """The call's events in order, ending after 'disconnected'."""
        while not (self._closed and self._queue.empty()):
            event = await self._queue.get()
            yield event
            if event.kind == "disconnected":
                return

    async def play(self, wav: Path | str, loop: bool = False) -> None:
        """Play a WAV file (16-bit mono) into the call; 'playback_done' follows unless looping."""
        await self._send("play", wav=str(wav), loop=loop)

    async def stop_playback(self) -> None:
        await self._send("stop_playback")

    async def record(self, path: Path | str) -> None:
        """Record what the far end sends into a WAV file until the call ends."""
        await self._send("record", path=str(path))

    async def send_dtmf(self, digits: str, method: str = "rfc4733") -> None:
        await self._send("send_dtmf", digits=digits, method=method)

    async def hangup(self, code: int | None = None) -> None:
        """End the call (CANCEL before answer, BYE after); 'disconnected' follows."""
        await self._send("hangup", code=code)

    def _deliver(self, event: SipEvent) -> None:
        if self._closed:
            return
        self.started = self.started or event.kind == "calling"
        if event.kind == "disconnected":
            self._closed = True
            self.final = event
        self._queue.put_nowait(event)

    async def _send(self, name: str, **args: object) -> None:
        if self._closed or self._process is None:
            return
        await self._pool._send(self._process, make_command(name, ref=self.ref, **args))


class EnginePool:
    """N engine processes, each carrying up to `capacity` calls, with supervision and restart."""

    def __init__(self, settings: SipSettings, *, processes: int | None = None, python: str = sys.executable,
                 policy: RestartPolicy | None = None, engine_log_level: str = "WARNING") -> None:
        count = settings.processes if processes is None else processes
        if count < 1:
            raise ValueError("an engine pool needs at least one process")
        self.settings = settings
        self.policy = policy or RestartPolicy()
        self._python = python
        self._log_level = engine_log_level
        self._engines = [
            _Engine(i, settings.port + i, rtp_range(settings.rtp_port, settings.rtp_ports_per_process, i)[0])
            for i in range(count)
        ]
        self._refs = itertools.count(1)
        self._changed = asyncio.Event()
        self._closing = False
        self._supervisors: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------------------------------- public

    @property
    def capacity(self) -> int:
        """Calls the running engines can carry together right now."""
        return sum(e.capacity for e in self._engines if e.ready)

    @property
    def in_use(self) -> int:
        """Calls placed and not yet disconnected."""
        return sum(len(e.calls) for e in self._engines)

    @property
    def pids(self) -> list[int | None]:
        """The PID of each engine's current process (None while it is down)."""
        return [e.process.pid if e.process and e.process.returncode is None else None for e in self._engines]

    async def start(self) -> None:
        """Spawn every engine and wait until each reported 'ready'; raises EngineStartError if one cannot."""
        results = await asyncio.gather(*(self._spawn(e) for e in self._engines), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.stop()
            raise EngineStartError("; ".join(str(e) for e in errors))

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Shut every engine down (they hang up their calls), wait up to `timeout_s`, then kill the rest."""
        self._closing = True
        self._changed.set()
        for task in list(self._supervisors):
            task.cancel()
        await asyncio.gather(*self._supervisors, return_exceptions=True)
        running = [e for e in self._engines if e.process is not None]
        shutdown = make_command("shutdown")
        sends = [self._send(e.process, shutdown) for e in running if e.process is not None]
        with contextlib.suppress(TimeoutError):  # a hung engine may not read: it is killed below
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*sends)
        tasks = [t for e in running for t in e.tasks if t.get_name().startswith("reader")]
        if tasks:
            _done, late = await asyncio.wait(tasks, timeout=timeout_s)
            for engine in running:
                if engine.process is not None and engine.process.returncode is None:
                    log.warning("engine %d (pid %d) did not stop in %.1f s: killing it",
                                engine.index, engine.process.pid, timeout_s)
                    with contextlib.suppress(ProcessLookupError):
                        engine.process.kill()
            await asyncio.gather(*late, return_exceptions=True)

    async def place_call(self, uri: str, *, caller_id: str = "", display_name: str = "",
                         headers: Mapping[str, str] | None = None) -> CallHandle:
        """Start a call on an engine with a free slot, waiting while every slot is busy.
        Raises EnginePoolUnavailable when the pool is stopped or every engine was given up."""
        engine = await self._reserve()
        handle = CallHandle(f"c{next(self._refs)}", self, engine)
        engine.calls[handle.ref] = handle
        assert engine.process is not None
        await self._send(engine.process, make_command(
            "call", ref=handle.ref, uri=uri, caller_id=caller_id, display_name=display_name,
            headers=dict(headers) if headers else None))
        return handle

    # -------------------------------------------------------------------------------------- dispatch

    async def _reserve(self) -> _Engine:
        while True:
            if self._closing:
                raise EnginePoolUnavailable("the engine pool is stopped")
            if all(e.given_up for e in self._engines):
                raise EnginePoolUnavailable("every engine process failed and was given up")
            best = max(self._engines, key=lambda e: (e.free(), -e.index))
            if best.free() > 0:
                return best
            self._changed.clear()
            await self._changed.wait()

    async def _send(self, process: asyncio.subprocess.Process, command: Command) -> None:
        if process.returncode is not None or process.stdin is None or process.stdin.is_closing():
            return  # a dead engine: its calls get their 'disconnected' from the crash path
        try:
            process.stdin.write(encode_command(command).encode())
            await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            log.debug("engine pid %d gone while sending %s: %s", process.pid, command.name, exc)

    def _route(self, engine: _Engine, event: SipEvent | Ready | Pong | Fatal) -> None:
        if isinstance(event, Pong):
            future = engine.pongs.pop(event.seq, None)
            if future is not None and not future.done():
                future.set_result(None)
        elif isinstance(event, SipEvent):
            handle = engine.calls.get(event.ref)
            if handle is None:
                log.debug("engine %d: event %s for unknown call %s", engine.index, event.kind, event.ref)
                return
            handle._deliver(event)
            if event.kind == "error" and not handle.started:
                # the user agent refused the call before sending anything: nothing else will end it
                handle._deliver(SipEvent(ref=event.ref, kind="disconnected", t=event.t, reason=event.reason,
                                         remote_uri=event.remote_uri))
            if handle.closed:
                del engine.calls[event.ref]
                self._changed.set()
        else:
            log.warning("engine %d: unexpected %r after start", engine.index, event)

    # ---------------------------------------------------------------------------------- supervision

    async def _spawn(self, engine: _Engine) -> None:
        """Start the engine's process and wait for 'ready' (raises EngineStartError)."""
        engine.starts.append(time.monotonic())
        process = await asyncio.create_subprocess_exec(
            self._python, "-m", "ivr.engine", "--index", str(engine.index), "--port", str(engine.port),
            "--rtp-port", str(engine.rtp_port), "--log-level", self._log_level,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert process.stdin is not None
        try:
            # settings go through stdin, not argv: they may hold the trunk password
            process.stdin.write((settings_to_json(self.settings) + "\n").encode())
            async with asyncio.timeout(self.policy.ready_timeout_s):
                ready = await self._await_ready(engine, process)
        except BaseException as exc:
            await self._kill(process)
            if isinstance(exc, TimeoutError):
                why = f"engine {engine.index} not ready in {self.policy.ready_timeout_s} s"
                raise EngineStartError(why) from exc
            raise
        engine.process, engine.capacity = process, ready.capacity
        log.info("engine %d ready: pid %d, port %d, %d calls", engine.index, process.pid, ready.port,
                 ready.capacity)
        self._watch(engine, process)
        self._changed.set()

    async def _await_ready(self, engine: _Engine, process: asyncio.subprocess.Process) -> Ready:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            try:
                event = decode_event(line)
            except EngineProtocolError as exc:
                log.error("engine %d: %s", engine.index, exc.detail)
                continue
            if isinstance(event, Ready):
                return event
            if isinstance(event, Fatal):
                raise EngineStartError(f"engine {engine.index} (port {engine.port}): {event.reason}")
        code = await process.wait()
        raise EngineStartError(f"engine {engine.index} (port {engine.port}) exited with status {code} "
                               "before it was ready")

    def _watch(self, engine: _Engine, process: asyncio.subprocess.Process) -> None:
        reader = asyncio.create_task(self._read(engine, process), name=f"reader-{engine.index}")
        engine.tasks.add(reader)
        reader.add_done_callback(engine.tasks.discard)
        if self.policy.ping_interval_s is not None:
            pinger = asyncio.create_task(self._ping_loop(engine, process), name=f"pinger-{engine.index}")
            engine.tasks.add(pinger)
            pinger.add_done_callback(engine.tasks.discard)

    async def _read(self, engine: _Engine, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while True:
            try:
                line = await process.stdout.readline()
            except ValueError:  # a line over the stream limit; the reader has skipped it
                log.error("engine %d: event line too long, dropped", engine.index)
                continue
            if not line:
                break
            try:
                self._route(engine, decode_event(line))
            except EngineProtocolError as exc:
                log.error("engine %d: %s", engine.index, exc.detail)
        code = await process.wait()
        for task in engine.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._exited(engine, code)

    def _exited(self, engine: _Engine, code: int) -> None:
        engine.process, engine.capacity = None, 0
        calls, engine.calls = list(engine.calls.values()), {}
        reason = STOPPED if self._closing else CRASHED
        if not self._closing:
            log.error("engine %d exited with status %d, failing %d call(s)", engine.index, code, len(calls))
        for handle in calls:
            handle._deliver(SipEvent(ref=handle.ref, kind="disconnected", t=time.monotonic(), reason=reason))
        self._changed.set()
        if not self._closing:
            task = asyncio.create_task(self._restart(engine), name=f"restart-{engine.index}")
            self._supervisors.add(task)
            task.add_done_callback(self._supervisors.discard)

    async def _restart(self, engine: _Engine) -> None:
        while not self._closing:
            delay = restart_delay(engine.starts, time.monotonic(), self.policy)
            if delay is None:
                engine.given_up = True
                log.error("engine %d restarted %d times within %.0f s: giving it up", engine.index,
                          self.policy.max_restarts, self.policy.window_s)
                self._changed.set()
                return
            await asyncio.sleep(delay)
            try:
                await self._spawn(engine)
                return
            except EngineStartError as exc:
                log.error("restart failed: %s", exc.detail)

    async def _ping_loop(self, engine: _Engine, process: asyncio.subprocess.Process) -> None:
        assert self.policy.ping_interval_s is not None
        for seq in itertools.count(1):
            await asyncio.sleep(self.policy.ping_interval_s)
            future = asyncio.get_running_loop().create_future()
            engine.pongs[seq] = future
            try:
                # the send is inside the timeout too: a hung engine stops reading and fills its pipe
                async with asyncio.timeout(self.policy.ping_timeout_s):
                    await self._ping(process, seq, future)
            except TimeoutError:
                log.error("engine %d (pid %d) did not answer a ping in %.1f s: killing it",
                          engine.index, process.pid, self.policy.ping_timeout_s)
                await self._kill(process)
                return
            finally:
                engine.pongs.pop(seq, None)

    async def _ping(self, process: asyncio.subprocess.Process, seq: int, pong: asyncio.Future[None]) -> None:
        await self._send(process, make_command("ping", seq=seq))
        await pong

    @staticmethod
    async def _kill(process: asyncio.subprocess.Process) -> None:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()
