"""The worker's pure parts (prompt rebuilding, call options, outcomes), JSON logs and the health check:
no sockets, no processes."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from pathlib import Path

import pytest

from api.core.prompts import ClaimedMessage, PromptUnavailable, call_options, prompt_spec
from api.fronts.ops import Metrics, OpsContext, check_health
from api.runtime.logging_setup import JsonFormatter, configure_logging
from api.runtime.worker import failure_outcome
from ivr.errors import InvalidPromptSpec
from ivr.prompt import AudioSegment, TextSegment
from store.db import Database
from tts.base import Voice

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def claimed(kind: str, settings: dict[str, object], body: str = "") -> ClaimedMessage:
    return ClaimedMessage(id="m" * 32, kind=kind, phone="+12506063167", callerid="", body=body,
                          settings=settings, prompt_blob=None, attempts=1, created_at=NOW)


def no_blobs(_digest: str) -> bytes | None:
    return None


def test_tts_spec_uses_text_and_voice() -> None:
    spec = prompt_spec(claimed("tts", {"text": "Adam, web server is down", "language": "es",
                                       "gender": "male"}), no_blobs)
    assert spec.segments == (TextSegment("Adam, web server is down"),)
    assert spec.voice == Voice(language="es", gender="male")


def test_tts_spec_falls_back_to_the_body_and_refuses_nothing_to_say() -> None:
    assert prompt_spec(claimed("tts", {}, body="Hello"), no_blobs).segments == (TextSegment("Hello"),)
    with pytest.raises(PromptUnavailable):
        prompt_spec(claimed("tts", {}, body="  "), no_blobs)


def test_voice_spec_reads_the_blob() -> None:
    store = {"ab" * 32: b"RIFF..."}
    spec = prompt_spec(claimed("voice", {"blob": "ab" * 32}), store.get)
    assert spec.segments == (AudioSegment(data=b"RIFF...", name=f"blob {'ab' * 32}"),)
    with pytest.raises(PromptUnavailable, match="not in the store"):
        prompt_spec(claimed("voice", {"blob": "cd" * 32}), store.get)


def test_vtts_spec_keeps_order_and_per_segment_voices() -> None:
    store = {"ab" * 32: b"audio"}
    settings = {"segments": [{"blob": "ab" * 32}, {"text": "Hola", "language": "es"}, {"text": "Bye"}],
                "language": "us", "gender": "male"}
    spec = prompt_spec(claimed("vtts", settings), store.get)
    first, second, third = spec.segments
    assert isinstance(first, AudioSegment) and first.data == b"audio"
    assert second == TextSegment("Hola", Voice(language="es", gender="male"))
    assert third == TextSegment("Bye") and spec.voice == Voice(language="us", gender="male")


@pytest.mark.parametrize("settings", [{}, {"segments": []}, {"segments": [{"url": "http://x"}]}])
def test_vtts_spec_refuses_bad_segments(settings: dict[str, object]) -> None:
    with pytest.raises(PromptUnavailable):
        prompt_spec(claimed("vtts", settings), no_blobs)


def test_bad_language_is_the_prompt_error() -> None:
    with pytest.raises(InvalidPromptSpec):
        prompt_spec(claimed("tts", {"text": "x", "language": "fr"}), no_blobs)


@pytest.mark.parametrize(("settings", "expected"), [
    ({}, (False, 0)), ({"response": True, "repeat": 2}, (True, 2)), ({"response": 1}, (True, 0)),
    ({"response": "0", "repeat": "1"}, (False, 1)), ({"response": False, "repeat": None}, (False, 0)),
])
def test_call_options(settings: dict[str, object], expected: tuple[bool, int]) -> None:
    assert call_options(claimed("tts", settings)) == expected


def test_call_options_refuse_a_bad_repeat() -> None:
    with pytest.raises(PromptUnavailable):
        call_options(claimed("tts", {"repeat": "twice"}))


def test_failure_outcome_carries_the_error_status() -> None:
    outcome = failure_outcome(PromptUnavailable("gone"))
    assert (outcome.status_code, outcome.status_text, outcome.answered) == (500, "ERROR: PROMPT UNAVAILABLE",
                                                                            False)


def test_json_log_lines() -> None:
    stream = io.StringIO()
    configure_logging("json", "INFO", stream)
    try:
        logging.getLogger("api.test").info("claimed %s", "abc", extra={"message_id": "abc"})
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("api.test").exception("failed")
        logging.getLogger("api.test").debug("not shown")
    finally:
        configure_logging("text", "WARNING")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["level"], first["logger"], first["msg"], first["message_id"]) == (
        "INFO", "api.test", "claimed abc", "abc")
    assert first["ts"].endswith("Z") and isinstance(first["pid"], int)
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exc"]


def test_json_formatter_repr_of_odd_extras() -> None:
    record = logging.makeLogRecord({"msg": "x", "levelname": "INFO", "name": "n", "path": Path("/a")})
    assert json.loads(JsonFormatter().format(record))["path"] == repr(Path("/a"))


class Engines:
    def __init__(self, pids: list[int | None]) -> None:
        self.pids = pids


def test_health_and_metrics_of_a_database(tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'x.db'}")
    db.upgrade()
    try:
        context = OpsContext(db, metrics=Metrics(), pool=Engines([11, None]), now=lambda: NOW)
        healthy, body = check_health(context)
        assert healthy and body == {"status": "ok", "database": "ok", "engines": {"up": 1, "total": 2},
                                    "sms": {"configured": False}}
        context.pool = Engines([None, None])
        assert check_health(context)[0] is False
        text = context.metrics.render().decode()
        assert "ivrgate_queue_depth 0.0" in text and "ivrgate_engine_processes 2.0" in text
    finally:
        db.dispose()


def test_health_fails_when_the_database_is_unreachable(tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    (tmp_path / "missing").rmdir()  # the engine created the directory; without it SQLite cannot open
    try:
        healthy, body = check_health(OpsContext(db))
        assert not healthy and body["database"] == "unreachable" and body["status"] == "unavailable"
        assert "ivrgate_queue_depth" not in OpsContext(db).metrics.render().decode()
    finally:
        db.dispose()
