"""Prompts with voice URLs served by a real HTTP server on 127.0.0.1, and the `prompt` command end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from api.cli.commands.prompt import register, run
from api.core.settings import Settings
from audio.wav import read_wav
from ivr.errors import FetchHttpError, NotAudio, TooManyRedirects, UrlRefused
from ivr.fetch import UrlFetcher
from ivr.prompt import AudioSegment, PromptRenderer, PromptSpec, TextSegment, UrlSegment, spec_from_vtts
from ivr.settings import FetchSettings
from tests.integration.fetch.server import Server

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "audio"
SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "prompts"
LOCAL = FetchSettings(allowed_networks=("127.0.0.1/32",), total_timeout_s=5.0)


def renderer(tmp_path: Path, settings: FetchSettings = LOCAL) -> PromptRenderer:
    return PromptRenderer(tmp_path / "cache", fetcher=UrlFetcher(settings))


def test_file_text_and_url(tmp_path: Path, server: Server) -> None:
    spec = PromptSpec((
        AudioSegment(path=FIXTURES / "tone.ogg"),
        TextSegment("Your appointment is tomorrow at 9am."),
        UrlSegment(server.url("/tone.mp3")),
        UrlSegment(server.url("/hop")),
    ))
    render = renderer(tmp_path)
    first = render.render(spec)
    pcm, rate = read_wav(first.path)
    assert rate == 8000
    assert first.duration_s == len(pcm) / 8000 > 2.0
    assert server.requests == ["/tone.mp3", "/hop", "/hop2", "/tone.wav"]
    second = render.render(spec)
    assert second.cached and second.path == first.path


def test_seed_vtts_message_with_local_urls(tmp_path: Path, server: Server) -> None:
    text = "This text will be converted to voice by TTS engine."
    msg = [server.url("/tone.wav"), text, server.url("/tone.mp3")]
    result = renderer(tmp_path).render(spec_from_vtts(msg))
    assert not result.cached
    assert result.duration_s > 2.0


@pytest.mark.parametrize(
    ("path", "error"),
    [("/page.mp3", NotAudio), ("/missing.wav", FetchHttpError), ("/loop", TooManyRedirects),
     ("/to-private", UrlRefused)],
)
def test_bad_urls_fail_the_render(tmp_path: Path, server: Server, path: str, error: type[Exception]) -> None:
    spec = PromptSpec((TextSegment("Hello"), UrlSegment(server.url(path))))
    with pytest.raises(error):
        renderer(tmp_path).render(spec)
    assert not list((tmp_path / "cache" / "prompts").rglob("*.wav"))


def test_default_settings_refuse_the_local_server(tmp_path: Path, server: Server) -> None:
    with pytest.raises(UrlRefused):
        renderer(tmp_path, FetchSettings()).render(PromptSpec((UrlSegment(server.url("/tone.wav")),)))
    assert server.requests == []


def cli(argv: list[str], tmp_path: Path, fetch: FetchSettings | None = None) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["prompt", *argv])
    return run(args, Settings(data_dir=tmp_path / "data", fetch=fetch or FetchSettings()))


def test_cli_mixed_segments_to_output(
    tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.wav"
    argv = ["--text", "Hola", "--file", str(FIXTURES / "tone.flac"), "--url", server.url("/tone.wav"),
            "--language", "es", "--gender", "male", "--allow-private", "-o", str(out)]
    assert cli(argv, tmp_path) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("prompt: ") and printed.rstrip().endswith(f"s, written to {out}")
    pcm, rate = read_wav(out)
    assert rate == 8000
    assert f"{len(pcm) / 8000:.2f} s" in printed


def test_cli_json_sample_prints_cache_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["--json", str(SAMPLES / "vtts_sample.json")], tmp_path) == 0
    printed = capsys.readouterr().out.strip()
    written = Path(printed.rsplit("written to ", 1)[1])
    assert written.parent.parent == tmp_path / "data" / "cache" / "prompts"
    assert written.is_file()


def test_cli_without_allow_private_refuses(tmp_path: Path, server: Server) -> None:
    with pytest.raises(UrlRefused):
        cli(["--url", server.url("/tone.wav")], tmp_path)
    assert server.requests == []


def test_cli_json_with_local_url(tmp_path: Path, server: Server) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"msg": ["Hello", server.url("/tone.mp3")], "gender": "male"}))
    assert cli(["--json", str(spec), "-o", str(tmp_path / "x.wav")], tmp_path, LOCAL) == 0
    assert (tmp_path / "x.wav").stat().st_size > 44
