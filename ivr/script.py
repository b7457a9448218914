"""IVR scripts: a validated JSON list of steps (the runner is ivr.script_run, built on `ivr.flow`).

A script is steps of four types: `say` (TTS text with merge fields like `{name}`), `play` (an audio
reference), `gather` (a prompt, the digits allowed, a timeout, retries on no input and on invalid
input, the name the answer is recorded under, a branch on the digit) and `end`. Every step may name
its `next` step; without one it falls through to the step after it, and the last step ends the call.
`parse_script` refuses a bad script with `InvalidScript`, naming the step and the JSON path.

`ivr.script_run.ScriptRun` runs one call through a script. It takes the same events as `ivr.flow.CallFlow` and
returns the same actions, plus `StepPlay` (which step's prompt to play, instead of `Play`) and
`RecordAnswer`. Each step is played by a `CallFlow` of its own, so every rule of docs/flow.md (9
replays, the repeat plays, the response timer, the maximum call length, the far end hanging up)
is the flow's, not a copy: the runner only maps play and timer ids, moves between steps, retries
and records answers. A script of one gather step behaves exactly like today's flow with
`response=True` (a property test compares both). Time arrives as `now` on the events.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from ivr.errors import InvalidScript
from ivr.flow import (
    DEFAULT_MAX_CALL_S,
    DEFAULT_REPLAY_DIGIT,
    DEFAULT_RESPONSE_TIMEOUT_S,
    DEFAULT_VALID_DIGITS,
    MAX_REPEAT,
)

StepType: TypeAlias = Literal["say", "play", "gather", "end"]
PromptKind: TypeAlias = Literal["say", "play"]
STEP_TYPES: tuple[StepType, ...] = ("say", "play", "gather", "end")

MAX_STEPS = 50
MAX_TEXT = 1000
"""Longest `say` text or `play` reference, in characters."""
MAX_DEPTH = 30
"""Most steps a caller can pass from the start to any step by the shortest route."""
MAX_RETRIES = 5
MIN_TIMEOUT_S, MAX_TIMEOUT_S = 1.0, 60.0
ANSWER_DIGITS = DEFAULT_VALID_DIGITS.replace(DEFAULT_REPLAY_DIGIT, "")
"""The keys a gather may accept as answers: the dial pad without 9, which always replays the step."""
_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}\Z")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}\Z")

_COMMON = {"id", "type", "next"}
_FIELDS: dict[str, set[str]] = {
    "say": _COMMON | {"text", "repeat"},
    "play": _COMMON | {"audio", "repeat"},
    "gather": _COMMON
    | {"prompt", "repeat", "digits", "timeout_s", "retries_no_input", "retries_invalid", "record", "branch"},
    "end": {"id", "type"},
}


@dataclass(frozen=True)
class Prompt:
    kind: PromptKind
    content: str
    """TTS text (merge fields unrendered) for `say`, an audio reference for `play`."""

    @property
    def merge_fields(self) -> tuple[str, ...]:
        """The `{field}` names of a `say` text, in order of appearance."""
        if self.kind != "say":
            return ()
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.content) if name)


@dataclass(frozen=True)
class Step:
    id: str
    type: StepType
    prompt: Prompt | None = None
    repeat: int = 0
    digits: str = ANSWER_DIGITS
    timeout_s: float = DEFAULT_RESPONSE_TIMEOUT_S
    retries_no_input: int = 0
    retries_invalid: int = 0
    record: str | None = None
    branch: Mapping[str, str] = field(default_factory=dict)
    next: str | None = None
    """The step after this one (resolved: the following step when the JSON names none); None ends."""

    def target(self, digit: str | None) -> str | None:
        """The step that follows this one, after `digit` was gathered (None: end of the script)."""
        if digit is not None and digit in self.branch:
            return self.branch[digit]
        return self.next


@dataclass(frozen=True)
class Script:
    steps: tuple[Step, ...]
    max_call_s: float = DEFAULT_MAX_CALL_S

    @property
    def start(self) -> Step:
        return self.steps[0]

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    @property
    def records(self) -> tuple[str, ...]:
        return tuple(s.record for s in self.steps if s.record)


# --- parsing and validation ----------------------------------------------------------------------


class _Pairs(dict[str, Any]):
    """A JSON object that remembers the keys it held twice."""

    duplicates: tuple[str, ...] = ()


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _Pairs:
    obj = _Pairs()
    seen: list[str] = []
    for key, value in pairs:
        if key in obj:
            seen.append(key)
        obj[key] = value
    obj.duplicates = tuple(seen)
    return obj


def loads(text: str) -> Any:
    """Parse JSON text keeping track of duplicate keys (a digit used twice in one branch)."""
    try:
        return json.loads(text, object_pairs_hook=_pairs_hook)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidScript(f"not JSON: {exc}") from None


def parse_script(source: str | Mapping[str, Any]) -> Script:
    """Validate a script (JSON text or the decoded object) and return it; raise InvalidScript."""
    data = loads(source) if isinstance(source, str) else source
    return _Validator(data).run()


def _pointer(*parts: object) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class _Validator:
    def __init__(self, data: Any) -> None:
        self.data = data

    def run(self) -> Script:
        data = self.data
        if not isinstance(data, Mapping):
            raise InvalidScript("a script is a JSON object with a `steps` list")
        self._no_duplicates(data, (), None)
        unknown = sorted(set(data) - {"steps", "max_call_s"})
        if unknown:
            raise InvalidScript(f"unknown field {unknown[0]!r}", path=_pointer(unknown[0]))
        max_call = data.get("max_call_s", DEFAULT_MAX_CALL_S)
        if not _is_number(max_call) or not 1 <= max_call <= DEFAULT_MAX_CALL_S * 4:
            raise InvalidScript(f"must be 1..{DEFAULT_MAX_CALL_S * 4:g} seconds", path="/max_call_s")
        raw = data.get("steps")
        if not isinstance(raw, list) or not raw:
            raise InvalidScript("must be a non-empty list of steps", path="/steps")
        if len(raw) > MAX_STEPS:
            raise InvalidScript(f"{len(raw)} steps, at most {MAX_STEPS}", path="/steps")
        ids = self._ids(raw)
        steps = tuple(self._step(i, item, ids) for i, item in enumerate(raw))
        if steps[0].type == "end":
            raise InvalidScript(
                "the first step must say, play or gather", path="/steps/0/type", step=steps[0].id
            )
        script = Script(steps, float(max_call))
        _check_graph(script)
        return script

    def _no_duplicates(self, obj: Mapping[str, Any], at: tuple[object, ...], step: str | None) -> None:
        dup = getattr(obj, "duplicates", ())
        if dup:
            what = "digit" if at and at[-1] == "branch" else "field"
            raise InvalidScript(f"{what} {dup[0]!r} given twice", path=_pointer(*at, dup[0]), step=step)

    def _ids(self, raw: list[Any]) -> list[str]:
        ids: list[str] = []
        for i, item in enumerate(raw):
            if not isinstance(item, Mapping):
                raise InvalidScript("a step is a JSON object", path=_pointer("steps", i))
            step_id = item.get("id")
            if step_id is None:
                raise InvalidScript("missing step id", path=_pointer("steps", i, "id"))
            if not isinstance(step_id, str) or not _ID.match(step_id):
                raise InvalidScript(
                    "a step id is a letter then up to 31 letters, digits, - or _",
                    path=_pointer("steps", i, "id"),
                )
            if step_id in ids:
                raise InvalidScript(
                    f"duplicate step id {step_id!r}", path=_pointer("steps", i, "id"), step=step_id
                )
            ids.append(step_id)
        return ids

    def _step(self, i: int, item: Mapping[str, Any], ids: list[str]) -> Step:
        sid = item["id"]

        def fail(detail: str, *sub: object) -> InvalidScript:
            return InvalidScript(f"step {sid!r}: {detail}", path=_pointer("steps", i, *sub), step=sid)

        self._no_duplicates(item, ("steps", i), sid)
        kind = item.get("type")
        if kind not in STEP_TYPES:
            raise fail(f"unknown step type {kind!r} (one of {', '.join(STEP_TYPES)})", "type")
        extra = sorted(set(item) - _FIELDS[kind])
        if extra:
            raise fail(f"field {extra[0]!r} is not allowed in a {kind} step", extra[0])
        following = ids[i + 1] if i + 1 < len(ids) else None
        nxt = item.get("next", following)
        if "next" in item and nxt not in ids:
            raise fail(f"next step {nxt!r} does not exist", "next")
        if kind == "end":
            return Step(sid, "end")
        repeat = item.get("repeat", 0)
        if not _is_int(repeat) or not 0 <= repeat <= MAX_REPEAT:
            raise fail(f"repeat must be 0..{MAX_REPEAT}", "repeat")
        if kind == "say":
            return Step(sid, "say", _prompt("say", item.get("text"), fail, "text"), repeat, next=nxt)
        if kind == "play":
            return Step(sid, "play", _prompt("play", item.get("audio"), fail, "audio"), repeat, next=nxt)
        return self._gather(i, item, fail, ids, repeat, nxt)

    def _gather(
        self, i: int, item: Mapping[str, Any], fail: Any, ids: list[str], repeat: int, nxt: str | None
    ) -> Step:
        prompt = item.get("prompt")
        if not isinstance(prompt, Mapping) or len(prompt) != 1 or next(iter(prompt)) not in ("say", "play"):
            raise fail('prompt must be {"say": text} or {"play": audio}', "prompt")
        kind: PromptKind = "say" if "say" in prompt else "play"
        spoken = _prompt(kind, prompt[kind], fail, "prompt", kind)
        digits = item.get("digits", ANSWER_DIGITS)
        if not isinstance(digits, str) or not digits:
            raise fail("digits must be a non-empty string of keys", "digits")
        if DEFAULT_REPLAY_DIGIT in digits:
            raise fail(f"{DEFAULT_REPLAY_DIGIT} cannot be an answer: it always replays the step", "digits")
        bad = [d for d in digits if d not in ANSWER_DIGITS]
        if bad:
            raise fail(f"{bad[0]!r} is not a dial-pad key", "digits")
        if len(set(digits)) != len(digits):
            raise fail("a digit is listed twice", "digits")
        timeout = item.get("timeout_s", DEFAULT_RESPONSE_TIMEOUT_S)
        if not _is_number(timeout) or not MIN_TIMEOUT_S <= timeout <= MAX_TIMEOUT_S:
            raise fail(f"timeout_s must be {MIN_TIMEOUT_S:g}..{MAX_TIMEOUT_S:g} seconds", "timeout_s")
        retries = {}
        for name in ("retries_no_input", "retries_invalid"):
            value = item.get(name, 0)
            if not _is_int(value) or not 0 <= value <= MAX_RETRIES:
                raise fail(f"{name} must be 0..{MAX_RETRIES}", name)
            retries[name] = value
        record = item.get("record")
        if record is not None and (not isinstance(record, str) or not _NAME.match(record)):
            raise fail("record must be a name of letters, digits and _ (e.g. q1)", "record")
        branch = item.get("branch", {})
        if not isinstance(branch, Mapping):
            raise fail("branch must map digits to step ids", "branch")
        self._no_duplicates(branch, ("steps", i, "branch"), item["id"])
        for digit, target in branch.items():
            if digit == DEFAULT_REPLAY_DIGIT:
                raise fail(
                    f"{DEFAULT_REPLAY_DIGIT} cannot be branched on: it always replays the step",
                    "branch",
                    digit,
                )
            if not isinstance(digit, str) or len(digit) != 1 or digit not in digits:
                raise fail(
                    f"branch digit {digit!r} is not one of the step's digits {digits!r}", "branch", digit
                )
            if target not in ids:
                raise fail(f"branch to unknown step {target!r}", "branch", digit)
        return Step(
            item["id"], "gather", spoken, repeat, digits, float(timeout), retries["retries_no_input"],
            retries["retries_invalid"], record, dict(branch), nxt,
        )


def _prompt(kind: PromptKind, value: Any, fail: Any, *at: str) -> Prompt:
    if not isinstance(value, str) or not value.strip():
        raise fail("must be a non-empty string", *at)
    if len(value) > MAX_TEXT:
        raise fail(f"{len(value)} characters, at most {MAX_TEXT}", *at)
    prompt = Prompt(kind, value)
    if kind == "say":
        try:
            for name in prompt.merge_fields:
                if not _NAME.match(name):
                    raise fail(f"merge field {{{name}}} is not a plain name", *at)
        except ValueError as exc:
            raise fail(f"bad merge field: {exc}", *at) from None
    return prompt


def _check_graph(script: Script) -> None:
    index = {s.id: i for i, s in enumerate(script.steps)}

    def successors(step: Step) -> list[str]:
        found = [t for t in (*step.branch.values(), step.next) if t is not None]
        return list(dict.fromkeys(found))

    # A cycle through say/play steps only would loop without ever waiting for a key.
    state: dict[str, int] = {}
    for step in script.steps:
        if step.type in ("say", "play"):
            looped = _silent_cycle(script, step.id, state)
            if looped is not None:
                raise InvalidScript(
                    f"step {looped!r} loops back without a gather step (the call could never end by itself)",
                    path=_pointer("steps", index[looped], "next"), step=looped,
                )
    depth = {script.start.id: 0}
    queue = [script.start.id]
    for sid in queue:
        for target in successors(script.step(sid)):
            if target not in depth:
                depth[target] = depth[sid] + 1
                queue.append(target)
    for step in script.steps:
        where = _pointer("steps", index[step.id])
        if step.id not in depth:
            raise InvalidScript(f"step {step.id!r} is unreachable from the start", path=where, step=step.id)
        if depth[step.id] > MAX_DEPTH:
            raise InvalidScript(f"step {step.id!r} is {depth[step.id]} steps deep, at most {MAX_DEPTH}",
                                path=where, step=step.id)


def _silent_cycle(script: Script, start: str, state: dict[str, int]) -> str | None:
    """Depth-first search over say/play steps; the id of a step that closes a cycle, or None."""
    stack: list[tuple[str, bool]] = [(start, False)]
    while stack:
        sid, leaving = stack.pop()
        if leaving:
            state[sid] = 2
            continue
        if state.get(sid) == 2:
            continue
        state[sid] = 1
        stack.append((sid, True))
        nxt = script.step(sid).next
        if nxt is None or script.step(nxt).type not in ("say", "play"):
            continue
        if state.get(nxt) == 1:
            return sid
        if state.get(nxt) is None:
            stack.append((nxt, False))
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (_is_int(value) or isinstance(value, float)) and value == value  # False for NaN
