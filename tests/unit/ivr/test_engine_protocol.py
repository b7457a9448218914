"""The engine wire protocol (ivr.engine's codec), the engine's command loop with a stand-in user agent,
and the pool's restart rule: all pure, no processes, no sockets."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.engine import (
    COMMANDS,
    Command,
    EngineEvent,
    EngineLoop,
    EngineProtocolError,
    Fatal,
    Options,
    Pong,
    Ready,
    decode_command,
    decode_event,
    describe,
    encode_command,
    encode_event,
    make_command,
    parse_options,
    settings_from_json,
    settings_to_json,
)
from ivr.events import SipEvent
from ivr.pool import RestartPolicy, restart_delay
from ivr.settings import SipSettings

# ------------------------------------------------------------------------------------------- commands

FULL_COMMANDS = [
    make_command("call", ref="c1", uri="sip:1@127.0.0.1:5070", caller_id="12505550100", display_name="Clinic",
                 headers={"X-Job": "42"}),
    make_command("answer", ref="in-1", code=180),
    make_command("hangup", ref="c1", code=486),
    make_command("hangup", ref="c1"),
    make_command("play", ref="c1", wav="/tmp/prompt.wav", loop=True),
    make_command("stop_playback", ref="c1"),
    make_command("record", ref="c1", path="/tmp/heard.wav"),
    make_command("send_dtmf", ref="c1", digits="1#", method="info"),
    make_command("ping", seq=7),
    make_command("shutdown"),
]


@pytest.mark.parametrize("command", FULL_COMMANDS, ids=lambda c: c.name)
def test_command_round_trip(command: Command) -> None:
    line = encode_command(command)
    assert line.endswith("\n") and line.count("\n") == 1
    assert decode_command(line) == command
    assert decode_command(line.encode()) == command


def test_every_command_is_covered() -> None:
    assert {c.name for c in FULL_COMMANDS} == set(COMMANDS)


def test_defaults_are_filled_in() -> None:
    call = decode_command('{"cmd":"call","ref":"c9","uri":"sip:x@h"}')
    assert call.args == {"ref": "c9", "uri": "sip:x@h", "caller_id": "", "display_name": "", "headers": None}
    assert decode_command('{"cmd":"answer","ref":"in-2"}').args["code"] == 200
    assert decode_command('{"cmd":"hangup","ref":"c9"}').args["code"] is None
    assert decode_command('{"cmd":"play","ref":"c9","wav":"/a.wav"}').args["loop"] is False
    assert decode_command('{"cmd":"ping"}').args["seq"] == 0
    assert call.ref == "c9" and decode_command('{"cmd":"shutdown"}').ref == ""


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"ref": "c1"}', "unknown command None"),
        ('{"cmd": "dial", "ref": "c1"}', "unknown command 'dial'"),
        ('{"cmd": "call", "uri": "sip:x@h"}', "missing field 'ref'"),
        ('{"cmd": "call", "ref": "", "uri": "sip:x@h"}', "empty ref"),
        ('{"cmd": "call", "ref": "c1"}', "missing field 'uri'"),
        ('{"cmd": "call", "ref": 5, "uri": "sip:x@h"}', "'ref' has the wrong type"),
        ('{"cmd": "call", "ref": "c1", "uri": "u", "headers": ["X-A"]}', "'headers' has the wrong type"),
        ('{"cmd": "call", "ref": "c1", "uri": "u", "headers": {"X-A": 1}}', "header values must be strings"),
        ('{"cmd": "hangup", "ref": "c1", "code": true}', "'code' has the wrong type"),
        ('{"cmd": "hangup", "ref": "c1", "code": "486"}', "'code' has the wrong type"),
        ('{"cmd": "play", "ref": "c1", "wav": "/a.wav", "loop": 1}', "'loop' has the wrong type"),
        ('{"cmd": "ping", "seq": 1.5}', "'seq' has the wrong type"),
        ('{"cmd": "shutdown", "now": true}', "unknown field(s) now"),
    ],
)
def test_bad_commands_are_refused(line: str | bytes, message: str) -> None:
    with pytest.raises(EngineProtocolError) as info:
        decode_command(line)
    assert message in info.value.detail
    assert info.value.code == 500 and info.value.status_text == "ERROR: SIP ENGINE PROTOCOL"


def test_make_command_validates_like_decode() -> None:
    with pytest.raises(EngineProtocolError):
        make_command("send_dtmf", ref="c1", digits="1")
    with pytest.raises(EngineProtocolError):
        make_command("play", ref="c1", wav=Path("/a.wav"))


texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@given(ref=texts.filter(bool), uri=texts, caller=texts, name=texts,
       headers=st.none() | st.dictionaries(texts, texts, max_size=3))
def test_call_commands_survive_any_text(ref: str, uri: str, caller: str, name: str,
                                        headers: dict[str, str] | None) -> None:
    command = make_command("call", ref=ref, uri=uri, caller_id=caller, display_name=name, headers=headers)
    line = encode_command(command)
    assert line.count("\n") == 1  # one command, one line, whatever the text holds
    assert decode_command(line) == command


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


@given(obj=st.dictionaries(st.sampled_from(["cmd", "ref", "uri", "code", "seq", "wav", "loop", "x"]),
                           json_values | st.sampled_from(sorted(COMMANDS)), max_size=5))
def test_arbitrary_objects_decode_or_raise_protocol_error(obj: dict[str, Any]) -> None:
    try:
        command = decode_command(json.dumps(obj))
    except EngineProtocolError:
        return
    assert command.name in COMMANDS and decode_command(encode_command(command)) == command


# --------------------------------------------------------------------------------------------- events

FULL_EVENTS: list[EngineEvent] = [
    SipEvent(ref="c1", kind="calling", t=12.5, call_id="abc@host", remote_uri="sip:1@127.0.0.1:5070"),
    SipEvent(ref="c1", kind="ringing", t=12.6, sip_code=180, call_id="abc@host"),
    SipEvent(ref="c1", kind="media", t=12.7, call_id="abc@host", telephone_event=True),
    SipEvent(ref="c1", kind="digit", t=13.0, digit="1", source="rfc4733", call_id="abc@host"),
    SipEvent(ref="c1", kind="disconnected", t=14.0, sip_code=200, reason="Normal call clearing"),
    SipEvent(ref="c2", kind="error", t=1.0, reason="no free call slot", remote_uri="sip:2@h"),
    Ready(index=3, port=5083, rtp_port=20120, capacity=4, pid=4242),
    Pong(seq=9),
    Fatal(reason="SipError: SIP user agent did not start: address in use"),
]


@pytest.mark.parametrize("event", FULL_EVENTS, ids=lambda e: getattr(e, "kind", type(e).__name__))
def test_event_round_trip(event: EngineEvent) -> None:
    line = encode_event(event)
    assert line.endswith("\n") and line.count("\n") == 1
    assert decode_event(line) == event


def test_control_events_are_tagged_by_kind() -> None:
    assert json.loads(encode_event(Pong(3))) == {"kind": "pong", "seq": 3}
    assert json.loads(encode_event(FULL_EVENTS[6]))["kind"] == "ready"
    assert json.loads(encode_event(Fatal("x"))) == {"kind": "fatal", "reason": "x"}


def test_sip_event_defaults_and_integer_time() -> None:
    event = decode_event('{"kind":"answered","ref":"c1","t":5}')
    assert event == SipEvent(ref="c1", kind="answered", t=5.0)
    assert isinstance(event, SipEvent) and isinstance(event.t, float)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{", "not JSON"),
        ('"ready"', "not a JSON object"),
        ('{"kind":"hello","ref":"c1","t":1}', "unknown event kind 'hello'"),
        ('{"kind":"answered","t":1}', "ref and t are required"),
        ('{"kind":"answered","ref":"c1"}', "ref and t are required"),
        ('{"kind":"answered","ref":"c1","t":"now"}', "'t' has the wrong type"),
        ('{"kind":"answered","ref":"c1","t":1,"sip_code":"200"}', "'sip_code' has the wrong type"),
        ('{"kind":"digit","ref":"c1","t":1,"digit":null}', "'digit' has the wrong type"),
        ('{"kind":"answered","ref":"c1","t":1,"extra":1}', "unknown field(s) extra"),
        ('{"kind":"ready","index":0,"port":5080,"rtp_port":20000,"capacity":4}', "missing field 'pid'"),
        ('{"kind":"pong","seq":"1"}', "'seq' has the wrong type"),
        ('{"kind":"fatal"}', "missing field 'reason'"),
    ],
)
def test_bad_events_are_refused(line: str, message: str) -> None:
    with pytest.raises(EngineProtocolError) as info:
        decode_event(line)
    assert message in info.value.detail


# ------------------------------------------------------------------------------------------- settings


def test_settings_round_trip() -> None:
    custom = replace(SipSettings(), port=6000, transport="tcp", codecs=("PCMA/8000",), ring_timeout_s=30.0,
                     password="s3cret", p_asserted_identity=True)
    for settings in (SipSettings(), custom):
        text = settings_to_json(settings)
        assert "\n" not in text
        assert settings_from_json(text) == settings


def test_settings_accept_integers_for_floats_and_partial_objects() -> None:
    settings = settings_from_json('{"ring_timeout_s": 20, "port": 7000}')
    assert settings.ring_timeout_s == 20.0 and isinstance(settings.ring_timeout_s, float)
    assert settings.port == 7000 and settings.rtp_port == SipSettings().rtp_port


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"port": "5080"}', "'port' has the wrong type"),
        ('{"codecs": "PCMU/8000"}', "'codecs' has the wrong type"),
        ('{"p_asserted_identity": 1}', "'p_asserted_identity' has the wrong type"),
        ('{"portt": 5080}', "unknown key(s) portt"),
        ("", "not JSON"),
    ],
)
def test_bad_settings_are_refused(text: str, message: str) -> None:
    with pytest.raises(EngineProtocolError) as info:
        settings_from_json(text)
    assert message in info.value.detail


# -------------------------------------------------------------------------------------- command line


def test_options() -> None:
    argv = ["--index", "2", "--port", "5082", "--rtp-port=20080", "--log-level", "debug"]
    assert parse_options(argv) == Options(index=2, port=5082, rtp_port=20080, log_level="debug")
    assert parse_options(["--index=0", "--port=1", "--rtp-port=2", "--settings", "{}"]).settings == "{}"


@pytest.mark.parametrize(
    "argv",
    [[], ["--index", "0", "--port", "1"], ["--index", "x", "--port", "1", "--rtp-port", "2"],
     ["--index", "0", "--port", "1", "--rtp-port", "2", "--bogus", "3"], ["--index"]],
)
def test_bad_options(argv: list[str]) -> None:
    with pytest.raises(EngineProtocolError, match=r"usage: python -m ivr\.engine"):
        parse_options(argv)


# ---------------------------------------------------------------------- the command loop, no process


class RecordingAgent:
    """Stands in for SipUserAgent: records what the engine asks of it."""

    capacity = 4
    local_port = 5099
    alive = True

    def __init__(self, *, fail_start: bool = False, fail_on: str = "") -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.fail_start, self.fail_on = fail_start, fail_on
        self.stopped: list[float] = []

    def start(self) -> None:
        if self.fail_start:
            raise OSError("address already in use")

    def stop(self, timeout_s: float) -> None:
        self.stopped.append(timeout_s)

    def __getattr__(self, name: str) -> Any:
        if name not in COMMANDS:
            raise AttributeError(name)

        def method(*args: Any, **kwargs: Any) -> None:
            if name == self.fail_on:
                raise ValueError(f"cannot {name}")
            self.calls.append((name, args, kwargs))
        return method


def run_engine(agent: RecordingAgent, lines: list[str]) -> tuple[int, list[EngineEvent]]:
    events: list[EngineEvent] = []
    engine = EngineLoop(agent, events.append, index=1, port=5081, rtp_port=20040, clock=lambda: 99.0)
    return engine.run(lines), events


def test_engine_serves_commands_until_shutdown() -> None:
    agent = RecordingAgent()
    lines = [encode_command(c) for c in FULL_COMMANDS[:-1]]
    after = encode_command(make_command("ping", seq=99))
    lines += ["\n", "garbage\n", encode_command(FULL_COMMANDS[-1]), after]
    status, events = run_engine(agent, lines)
    assert status == 0 and agent.stopped
    assert events[0] == Ready(index=1, port=5099, rtp_port=20040, capacity=4, pid=events[0].pid)  # type: ignore[union-attr]
    assert events[1:] == [Pong(7)]  # nothing after shutdown is read
    assert [name for name, _, _ in agent.calls] == [c.name for c in FULL_COMMANDS[:8]]
    play = next(c for c in agent.calls if c[0] == "play")
    assert play[1] == ("c1",) and play[2] == {"wav": Path("/tmp/prompt.wav"), "loop": True}
    assert next(c for c in agent.calls if c[0] == "record")[2] == {"path": Path("/tmp/heard.wav")}
    call = agent.calls[0]
    assert call[2] == {"uri": "sip:1@127.0.0.1:5070", "caller_id": "12505550100", "display_name": "Clinic",
                       "headers": {"X-Job": "42"}}


def test_engine_stops_on_end_of_input() -> None:
    agent = RecordingAgent()
    status, _ = run_engine(agent, [encode_command(make_command("hangup", ref="c1"))])
    assert status == 0 and agent.stopped == [5.0] and agent.calls == [("hangup", ("c1",), {"code": None})]


def test_engine_reports_a_failed_command_as_an_error_event() -> None:
    agent = RecordingAgent(fail_on="call")
    _, events = run_engine(agent, [encode_command(FULL_COMMANDS[0])])
    assert events[1:] == [SipEvent(ref="c1", kind="error", t=99.0, reason="call: cannot call")]


def test_engine_that_cannot_start_says_fatal() -> None:
    agent = RecordingAgent(fail_start=True)
    status, events = run_engine(agent, [encode_command(make_command("ping"))])
    assert status == 1 and not agent.stopped
    assert events == [Fatal("OSError: address already in use")]


def test_describe_names_the_class_and_the_text() -> None:
    assert describe(ValueError("bad")) == "ValueError: bad"


def test_a_dead_user_agent_does_not_answer_pings() -> None:
    agent = RecordingAgent()
    agent.alive = False
    status, events = run_engine(agent, [encode_command(make_command("ping", seq=5))])
    assert status == 0 and agent.stopped
    assert [type(e) for e in events] == [Ready]  # no Pong: the pool's ping timeout replaces the engine


# ------------------------------------------------------------------------------------ restart policy


def test_restart_backoff_doubles_then_gives_up() -> None:
    policy = RestartPolicy(max_restarts=3, window_s=60.0, backoff_s=0.5, max_backoff_s=1.5)
    starts = [100.0]
    delays = []
    while (delay := restart_delay(starts, starts[-1] + 1.0, policy)) is not None:
        delays.append(delay)
        starts.append(starts[-1] + 1.0 + delay)
    assert delays == [0.5, 1.0, 1.5]


def test_restarts_outside_the_window_are_forgotten() -> None:
    policy = RestartPolicy(max_restarts=2, window_s=10.0, backoff_s=0.2)
    assert restart_delay([0.0, 1.0, 2.0], 3.0, policy) is None
    assert restart_delay([0.0, 1.0, 2.0], 11.5, policy) == 0.2  # only the start at 2.0 is recent
    assert restart_delay([0.0], 0.5, policy) == 0.2
