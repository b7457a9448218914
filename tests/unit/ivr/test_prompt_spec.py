"""Prompt specs: the vtts `msg` list, voices, keys, and the CLI's segment order."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.cli.commands.prompt import build_spec, register
from audio.settings import AssembleSettings, TelephonySettings
from ivr.errors import InvalidPromptSpec, UrlRefused
from ivr.prompt import (
    MAX_SEGMENTS,
    AudioSegment,
    PromptSpec,
    TextSegment,
    UrlSegment,
    make_voice,
    prompt_key,
    spec_from_json,
    spec_from_vtts,
)
from tts.base import Voice
from tts.settings import TTSSettings

SEED_MSG = [
    "http://www.myserver.com/voices/welcome_prompt.wav",
    "This text will be converted to voice by TTS engine.",
    "https://www.myserver.com/voices/segment2.mp3",
]


def test_seed_vtts_example() -> None:
    spec = spec_from_vtts(SEED_MSG, Voice("us", "male"))
    assert spec.segments == (
        UrlSegment(SEED_MSG[0]),
        TextSegment(SEED_MSG[1]),
        UrlSegment(SEED_MSG[2]),
    )
    assert spec.voice == Voice("us", "male")


def test_url_detection_ignores_case_and_padding() -> None:
    spec = spec_from_vtts(["  HTTPS://Example.org/a.wav ", "http is a protocol"])
    assert spec.segments == (UrlSegment("HTTPS://Example.org/a.wav"), TextSegment("http is a protocol"))


@pytest.mark.parametrize(
    "msg",
    [[], "just a string", {"msg": []}, None, [""], ["ok", "   "], ["ok", 3], ["ok", None], [["nested"]]],
)
def test_invalid_msg_is_520(msg: object) -> None:
    with pytest.raises(InvalidPromptSpec) as info:
        spec_from_vtts(msg)
    assert info.value.code == 520


def test_other_schemes_are_refused_not_spoken() -> None:
    with pytest.raises(UrlRefused, match="item 1"):
        spec_from_vtts(["hello", "ftp://example.org/a.wav"])


def test_too_many_segments() -> None:
    with pytest.raises(InvalidPromptSpec, match=str(MAX_SEGMENTS)):
        spec_from_vtts(["word"] * (MAX_SEGMENTS + 1))


def test_spec_from_json_object_and_list() -> None:
    spec = spec_from_json({"msg": ["Hola"], "language": "es", "gender": "male", "phone": "1250"})
    assert spec == PromptSpec((TextSegment("Hola"),), Voice("es", "male"))
    assert spec_from_json(["Hello"]).voice == Voice("us", "female")
    for bad in (
        {"language": "es"},
        "text",
        5,
        {"msg": ["x"], "language": "fr"},
        {"msg": ["x"], "gender": "x"},
    ):
        with pytest.raises(InvalidPromptSpec):
            spec_from_json(bad)


def test_make_voice_defaults() -> None:
    assert make_voice() == Voice("us", "female")
    assert make_voice("", None, Voice("es", "male")) == Voice("es", "male")
    assert make_voice("es") == Voice("es", "female")


def test_audio_segment_needs_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(InvalidPromptSpec):
        AudioSegment()
    with pytest.raises(InvalidPromptSpec):
        AudioSegment(data=b"x", path=tmp_path / "x.wav")


def key(spec: PromptSpec, digests: dict[int, str] | None = None, **changes: object) -> str:
    settings: dict[str, object] = {
        "tts": TTSSettings(),
        "telephony": TelephonySettings(),
        "assemble_settings": AssembleSettings(),
    }
    settings.update(changes)
    return prompt_key(spec, digests or {}, **settings)  # type: ignore[arg-type]


def test_key_covers_text_voice_audio_and_settings() -> None:
    base = PromptSpec((TextSegment("Hello"), UrlSegment("http://a/b.wav")))
    digests = {1: "aa" * 32}
    reference = key(base, digests)
    assert key(base, digests) == reference
    assert len(reference) == 64
    different = [
        key(PromptSpec((TextSegment("Hello!"), UrlSegment("http://a/b.wav"))), digests),
        key(dataclasses.replace(base, voice=Voice("us", "male")), digests),
        key(PromptSpec((TextSegment("Hello", Voice("es")), UrlSegment("http://a/b.wav"))), digests),
        key(base, {1: "bb" * 32}),
        key(base, digests, tts=TTSSettings(rate_wpm=170)),
        key(base, digests, telephony=TelephonySettings(target_lufs=-16.0)),
        key(base, digests, assemble_settings=AssembleSettings(gap_ms=300)),
        key(PromptSpec((UrlSegment("http://a/b.wav"), TextSegment("Hello"))), {0: "aa" * 32}),
    ]
    assert reference not in different
    assert len(set(different)) == len(different)


def test_key_ignores_where_audio_came_from() -> None:
    digest = {0: "cc" * 32}
    by_url = key(PromptSpec((UrlSegment("http://a/b.wav"),)), digest)
    by_upload = key(PromptSpec((AudioSegment(data=b"whatever", name="b.wav"),)), digest)
    assert by_url == by_upload


def test_segment_voice_equal_to_default_gives_same_key() -> None:
    assert key(PromptSpec((TextSegment("Hi", Voice()),))) == key(PromptSpec((TextSegment("Hi"),)))


@given(st.lists(st.text(min_size=1).filter(lambda s: s.strip()), min_size=1, max_size=5))
def test_vtts_keeps_order_and_count(items: list[str]) -> None:
    try:
        spec = spec_from_vtts(items)
    except UrlRefused:
        return
    assert len(spec.segments) == len(items)
    for item, segment in zip(items, spec.segments, strict=True):
        assert (segment.url if isinstance(segment, UrlSegment) else segment.text) == item.strip()  # type: ignore[union-attr]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["prompt", *argv])


def test_cli_keeps_interleaved_order() -> None:
    args = parse(
        ["--text", "one", "--file", "a.wav", "--url", "https://x/y.mp3", "--text", "two", "--file", "b.mp3"]
    )
    spec = build_spec(args)
    assert [type(s).__name__ for s in spec.segments] == [
        "TextSegment",
        "AudioSegment",
        "UrlSegment",
        "TextSegment",
        "AudioSegment",
    ]
    assert spec.segments[3] == TextSegment("two")
    assert spec.segments[4] == AudioSegment(path=Path("b.mp3"), name="b.mp3")


def test_cli_voice_and_json(tmp_path: Path) -> None:
    assert build_spec(parse(["--text", "Hola", "--language", "es", "--gender", "male"])).voice == Voice(
        "es", "male"
    )
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"msg": ["Hola"], "language": "es"}))
    assert build_spec(parse(["--json", str(spec_file)])).voice == Voice("es", "female")
    assert build_spec(parse(["--json", str(spec_file), "--gender", "male"])).voice == Voice("es", "male")


def test_cli_refusals(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    for argv in (
        [],
        ["--json", str(broken)],
        ["--json", str(tmp_path / "missing.json")],
        ["--json", str(broken), "--text", "x"],
    ):
        with pytest.raises(InvalidPromptSpec):
            build_spec(parse(argv))
    with pytest.raises(SystemExit):
        parse(["--text", "x", "--language", "fr"])
