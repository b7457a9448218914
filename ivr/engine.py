"""One SIP engine process: a single `SipUserAgent` driven over JSON lines on stdin/stdout.

pjsua2 wheels carry at most 4 calls per process, so capacity comes from a pool of these processes
(`ivr.pool`). Each one is started as

    python -m ivr.engine --index I --port P --rtp-port R [--settings JSON]

(without `--settings`, the first stdin line holds the `SipSettings` as JSON), then reads one command per
stdin line and writes one event per stdout line; it logs to stderr. It exits cleanly on `shutdown`, on
stdin EOF (the parent died) and on SIGTERM, hanging up its calls first.

The module is also the pure codec of that wire protocol (`encode_command`, `decode_command`,
`encode_event`, `decode_event`, `settings_to_json`, `settings_from_json`), which the pool imports.
It must stay lean: an idle engine is meant to be ~24 MiB, so nothing here imports asyncio (its ssl
import alone costs ~9 MiB), pydantic or the api package; numpy (with audio.dtmf) is imported in a
background thread right after 'ready' unless `inband_dtmf` is 'never'. pjsua2 (`ivr.sip`) is imported
only when the process runs an engine, never when the pool imports the codec.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO, cast, get_args

from ivr.errors import IvrError
from ivr.events import EventKind, SipEvent
from ivr.settings import SipSettings

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 5.0
"""How long the user agent may take to hang up its calls and destroy the endpoint on exit."""


class EngineProtocolError(IvrError):
    """A line on the engine wire that is not valid JSON or does not match the protocol."""

    status_text = "ERROR: SIP ENGINE PROTOCOL"


# --------------------------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class _Field:
    name: str
    types: tuple[type, ...]
    required: bool = True
    default: Any = None


_REF = _Field("ref", (str,))
COMMANDS: dict[str, tuple[_Field, ...]] = {
    "call": (
        _REF,
        _Field("uri", (str,)),
        _Field("caller_id", (str,), False, ""),
        _Field("display_name", (str,), False, ""),
        _Field("headers", (dict, type(None)), False, None),
    ),
    "answer": (_REF, _Field("code", (int,), False, 200)),
    "hangup": (_REF, _Field("code", (int, type(None)), False, None)),
    "play": (_REF, _Field("wav", (str,)), _Field("loop", (bool,), False, False)),
    "stop_playback": (_REF,),
    "record": (_REF, _Field("path", (str,))),
    "send_dtmf": (_REF, _Field("digits", (str,)), _Field("method", (str,))),
    "ping": (_Field("seq", (int,), False, 0),),
    "shutdown": (),
}
"""Every command the engine accepts, with its fields (all JSON scalars except `headers`)."""


@dataclass(frozen=True)
class Command:
    """One parent-to-engine command: its name and its validated fields (defaults filled in)."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """The call the command is about ('' for ping and shutdown)."""
        return str(self.args.get("ref", ""))


def make_command(name: str, **args: Any) -> Command:
    """Build a validated command; raises EngineProtocolError like `decode_command` would."""
    return _validate_command({"cmd": name, **args})


def encode_command(command: Command) -> str:
    """One JSON line (with its newline) for `command`."""
    return json.dumps({"cmd": command.name, **command.args}, separators=(",", ":")) + "\n"


def decode_command(line: str | bytes) -> Command:
    """Parse and validate one command line; raises EngineProtocolError on anything unexpected."""
    return _validate_command(_load_object(line))


def _validate_command(obj: Mapping[str, Any]) -> Command:
    name = obj.get("cmd")
    if not isinstance(name, str) or name not in COMMANDS:
        raise EngineProtocolError(f"unknown command {name!r}")
    args = _check_fields(obj, COMMANDS[name], skip="cmd", what=f"command {name!r}")
    if "ref" in args and not args["ref"]:
        raise EngineProtocolError(f"command {name!r}: empty ref")
    headers = args.get("headers")
    if headers is not None and not all(isinstance(v, str) for v in headers.values()):
        raise EngineProtocolError(f"command {name!r}: header values must be strings")
    return Command(name, args)


def _check_fields(obj: Mapping[str, Any], spec: Sequence[_Field], *, skip: str, what: str) -> dict[str, Any]:
    known = {f.name for f in spec}
    extra = sorted(k for k in obj if k != skip and k not in known)
    if extra:
        raise EngineProtocolError(f"{what}: unknown field(s) {', '.join(extra)}")
    out: dict[str, Any] = {}
    for f in spec:
        if f.name not in obj:
            if f.required:
                raise EngineProtocolError(f"{what}: missing field {f.name!r}")
            out[f.name] = f.default
            continue
        value = obj[f.name]
        # bool is an int in Python but not in this protocol
        if not isinstance(value, f.types) or (isinstance(value, bool) and bool not in f.types):
            raise EngineProtocolError(f"{what}: field {f.name!r} has the wrong type")
        out[f.name] = value
    return out


def _load_object(line: str | bytes) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EngineProtocolError(f"not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise EngineProtocolError("not a JSON object")
    return obj


# ----------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Ready:
    """The engine's user agent is listening and can take `capacity` calls."""

    index: int
    port: int
    rtp_port: int
    capacity: int
    pid: int


@dataclass(frozen=True)
class Pong:
    """The answer to `ping`, carrying its `seq` back."""

    seq: int


@dataclass(frozen=True)
class Fatal:
    """The engine could not start (bad settings, port in use ...) and is exiting."""

    reason: str


EngineEvent = SipEvent | Ready | Pong | Fatal
"""Anything an engine writes on stdout."""

SIP_KINDS: frozenset[str] = frozenset(get_args(EventKind))
_CONTROL: dict[str, type[Ready | Pong | Fatal]] = {"ready": Ready, "pong": Pong, "fatal": Fatal}
_SIP_FIELDS: dict[str, tuple[type, ...]] = {
    "ref": (str,), "t": (float, int), "sip_code": (int, type(None)), "reason": (str,), "call_id": (str,),
    "digit": (str,), "source": (str,), "telephone_event": (bool, type(None)), "remote_uri": (str,),
}
_CONTROL_FIELDS: dict[str, tuple[type, ...]] = {
    "index": (int,), "port": (int,), "rtp_port": (int,), "capacity": (int,), "pid": (int,), "seq": (int,),
    "reason": (str,),
}


def encode_event(event: EngineEvent) -> str:
    """One JSON line (with its newline) for an event; SipEvent fields keep their names."""
    body = dataclasses.asdict(event)
    if not isinstance(event, SipEvent):
        body = {"kind": _control_kind(event), **body}
    return json.dumps(body, separators=(",", ":"), default=str) + "\n"


def _control_kind(event: Ready | Pong | Fatal) -> str:
    return next(kind for kind, cls in _CONTROL.items() if isinstance(event, cls))


def decode_event(line: str | bytes) -> EngineEvent:
    """Parse and validate one event line; raises EngineProtocolError on anything unexpected."""
    obj = _load_object(line)
    kind = obj.get("kind")
    if isinstance(kind, str) and kind in _CONTROL:
        cls = _CONTROL[kind]
        spec = [_Field(f.name, _CONTROL_FIELDS[f.name]) for f in dataclasses.fields(cls)]
        return cls(**_check_fields(obj, spec, skip="kind", what=f"event {kind!r}"))
    if not isinstance(kind, str) or kind not in SIP_KINDS:
        raise EngineProtocolError(f"unknown event kind {kind!r}")
    spec = [_Field(f.name, _SIP_FIELDS.get(f.name, (object,)), False, _default(f))
            for f in dataclasses.fields(SipEvent) if f.name != "kind"]
    if "ref" not in obj or "t" not in obj:
        raise EngineProtocolError(f"event {kind!r}: ref and t are required")
    fields = _check_fields(obj, spec, skip="kind", what=f"event {kind!r}")
    fields["t"] = float(fields["t"])
    return SipEvent(kind=cast(EventKind, kind), **fields)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


# --------------------------------------------------------------------------------------------- settings


def settings_to_json(settings: SipSettings) -> str:
    """The settings as one JSON line (no newline), as an engine expects them."""
    return json.dumps(dataclasses.asdict(settings), separators=(",", ":"))


def settings_from_json(text: str) -> SipSettings:
    """SipSettings from `settings_to_json`'s output; unknown keys or wrong types are refused."""
    obj = _load_object(text)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(SipSettings):
        if f.name not in obj:
            continue
        value, default = obj.pop(f.name), _default(f)
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            raise EngineProtocolError(f"settings: {f.name!r} has the wrong type")
        out[f.name] = value
    if obj:
        raise EngineProtocolError(f"settings: unknown key(s) {', '.join(sorted(obj))}")
    return SipSettings(**out)


# ------------------------------------------------------------------------------------------- the process


class _Output:
    """Writes event lines from any thread without blocking it: the UA's callbacks must never block."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="engine-stdout", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def emit(self, event: EngineEvent) -> None:
        self._queue.put(encode_event(event))

    def close(self, timeout_s: float = 2.0) -> None:
        """Flush what is queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            while (line := self._queue.get()) is not None:
                self._stream.write(line)
                if self._queue.empty():
                    self._stream.flush()
            self._stream.flush()
        except (BrokenPipeError, ValueError):
            return  # the parent is gone; stdin EOF will end the process


def describe(exc: BaseException) -> str:
    """One line saying what went wrong: the exception's class and its (never empty) text."""
    return f"{type(exc).__name__}: {exc}"


class _Terminated(BaseException):
    """Raised in the main thread by the SIGTERM handler to leave the command loop."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Terminated


class EngineLoop:
    """Runs one user agent and applies commands to it; the process's main loop."""

    def __init__(self, ua: Any, output: Callable[[EngineEvent], None], *, index: int, port: int,
                 rtp_port: int, clock: Callable[[], float]) -> None:
        self._ua = ua
        self._emit = output
        self._index, self._port, self._rtp_port = index, port, rtp_port
        self._clock = clock

    def run(self, lines: Iterable[str]) -> int:
        """Start the UA, serve commands until shutdown / EOF / SIGTERM, stop the UA; the exit status."""
        try:
            self._ua.start()
        except IvrError as exc:  # a known refusal (a port taken, bad settings): one line, no traceback
            log.error("user agent failed to start: %s", exc.detail)
            self._emit(Fatal(describe(exc)))
            return 1
        except Exception as exc:
            log.exception("user agent failed to start")
            self._emit(Fatal(describe(exc)))
            return 1
        port = int(getattr(self._ua, "local_port", 0) or self._port)
        how = "stdin EOF"
        in_main = threading.current_thread() is threading.main_thread()
        # the handler goes in before 'ready': a SIGTERM sent as soon as the parent reads it must stop us
        # cleanly
        previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
        try:
            self._emit(Ready(self._index, port, self._rtp_port, int(self._ua.capacity), os.getpid()))
            preload = getattr(self._ua, "preload_dtmf", None)
            if callable(preload):
                preload()  # audio.dtmf (numpy) in a background thread: no call waits for it
            how = self._serve(lines)
        except _Terminated:
            how = "SIGTERM"
        finally:
            log.info("engine %d stopping (%s)", self._index, how)
            self._ua.stop(STOP_TIMEOUT_S)
            if in_main and previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return 0

    def _serve(self, lines: Iterable[str]) -> str:
        for line in lines:
            if not line.strip():
                continue
            try:
                command = decode_command(line)
            except EngineProtocolError as exc:
                log.error("bad command line %r: %s", line[:200], exc.detail)
                continue
            if command.name == "shutdown":
                return "shutdown"
            self.apply(command)
        return "stdin EOF"

    def apply(self, command: Command) -> None:
        """Apply one command; a UA error on a call becomes an 'error' event for that call."""
        if command.name == "ping":
            # a pong says the engine can serve calls: not while its SIP owner thread is dead
            if self._ua.alive:
                self._emit(Pong(int(command.args["seq"])))
            else:
                log.error("ping %d not answered: the SIP user agent is not running", command.args["seq"])
            return
        args = dict(command.args)
        ref = args.pop("ref")
        if "wav" in args:
            args["wav"] = Path(args["wav"])
        if "path" in args:
            args["path"] = Path(args["path"])
        try:
            getattr(self._ua, command.name)(ref, **args)
        except Exception as exc:
            log.warning("%s %s failed: %s", command.name, ref, exc)
            self._fail(command, exc)

    def _fail(self, command: Command, exc: Exception) -> None:
        # like the UA's own refusals: an 'error' before 'calling' means the call never started
        self._emit(SipEvent(ref=command.ref, kind="error", t=self._clock(), reason=f"{command.name}: {exc}"))


USAGE = "usage: python -m ivr.engine --index I --port P --rtp-port R [--settings JSON] [--log-level LEVEL]"
_OPTIONS = {"--index": "index", "--port": "port", "--rtp-port": "rtp_port", "--settings": "settings",
            "--log-level": "log_level"}


@dataclass(frozen=True)
class Options:
    """The engine's command line (argparse is not used: with its help formatter it costs ~0.8 MiB)."""

    index: int
    port: int
    rtp_port: int
    settings: str = ""
    """SipSettings as JSON; empty: read from the first stdin line (keeps a trunk password out of ps)."""
    log_level: str = "INFO"


def parse_options(argv: Sequence[str]) -> Options:
    """Parse `--name value` pairs; raises EngineProtocolError with the usage on anything else."""
    values: dict[str, str] = {}
    args = list(argv)
    while args:
        name = args.pop(0)
        key, eq, inline = name.partition("=")
        if key not in _OPTIONS or (not eq and not args):
            raise EngineProtocolError(f"bad argument {name!r}; {USAGE}")
        values[_OPTIONS[key]] = inline if eq else args.pop(0)
    try:
        return Options(index=int(values.pop("index")), port=int(values.pop("port")),
                       rtp_port=int(values.pop("rtp_port")), **values)
    except (KeyError, ValueError) as exc:
        raise EngineProtocolError(f"bad or missing argument ({exc}); {USAGE}") from exc


def _protocol_stream() -> TextIO:
    """The protocol's own copy of stdout; fd 1 then points at stderr, because C code (pjlib logs
    before its log writer is installed) writes to fd 1 and must not corrupt the event stream."""
    sys.stdout.flush()
    stream = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    return stream


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m ivr.engine`; returns the exit status."""
    try:
        options = parse_options(sys.argv[1:] if argv is None else argv)
    except EngineProtocolError as exc:
        sys.stderr.write(exc.detail + "\n")
        return 2
    logging.basicConfig(stream=sys.stderr, level=options.log_level.upper(),
                        format=f"%(asctime)s engine[{options.index}] %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; its death closes our stdin
    output = _Output(_protocol_stream())
    output.start()
    try:
        return _run(options, output)
    finally:
        output.close()


def _run(args: Options, output: _Output) -> int:
    from ivr.sip import SipUserAgent  # pjsua2: only in the engine process, not in the pool's

    try:
        settings = settings_from_json(args.settings or sys.stdin.readline())
        ua = SipUserAgent(settings, output.emit, port=args.port, rtp_port=args.rtp_port)
    except Exception as exc:
        log.error("cannot create the user agent: %s", exc)
        output.emit(Fatal(describe(exc)))
        return 1
    engine = EngineLoop(ua, output.emit, index=args.index, port=args.port, rtp_port=args.rtp_port,
                    clock=time.monotonic)
    return engine.run(sys.stdin)


if __name__ == "__main__":
    sys.exit(main())
