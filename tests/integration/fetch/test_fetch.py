"""UrlFetcher against a real HTTP server on 127.0.0.1: what it accepts and each documented refusal."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from ivr.errors import (
    FetchError,
    FetchHttpError,
    FetchTimeout,
    FetchTooLarge,
    NotAudio,
    TooManyRedirects,
    UrlRefused,
)
from ivr.fetch import UrlFetcher
from ivr.settings import FetchSettings
from tests.integration.fetch.server import BIG, MP3, WAV, Handler, Server

pytestmark = pytest.mark.integration

LOCAL = FetchSettings(allowed_networks=("127.0.0.1/32",), total_timeout_s=5.0)


def fetch(url: str, settings: FetchSettings = LOCAL) -> bytes:
    with UrlFetcher(settings) as fetcher:
        return fetcher.fetch(url).data


def test_fetches_wav(server: Server) -> None:
    with UrlFetcher(LOCAL) as fetcher:
        got = fetcher.fetch(server.url("/tone.wav"))
    assert got.data == WAV
    assert got.content_type == "audio/wav"
    assert got.final_url == server.url("/tone.wav")


def test_fetches_mp3(server: Server) -> None:
    assert fetch(server.url("/tone.mp3")) == MP3


def test_content_type_is_not_trusted_either_way(server: Server) -> None:
    assert fetch(server.url("/mislabelled")) == MP3
    with pytest.raises(NotAudio, match="HTML"):
        fetch(server.url("/page.mp3"))
    with pytest.raises(NotAudio, match="JSON"):
        fetch(server.url("/data.json"))


def test_empty_body_is_not_audio(server: Server) -> None:
    with pytest.raises(NotAudio, match="empty"):
        fetch(server.url("/empty.wav"))


def test_404_and_500_carry_the_status(server: Server) -> None:
    with pytest.raises(FetchHttpError, match="HTTP 404") as info:
        fetch(server.url("/nothing-here.wav"))
    assert info.value.status_text == "ERROR: VOICE URL NOT FOUND"
    with pytest.raises(FetchHttpError, match="HTTP 500"):
        fetch(server.url("/error"))


def test_follows_redirects_within_the_limit(server: Server) -> None:
    with UrlFetcher(LOCAL) as fetcher:
        got = fetcher.fetch(server.url("/hop"))
    assert got.data == WAV
    assert got.final_url == server.url("/tone.wav")
    assert server.requests == ["/hop", "/hop2", "/tone.wav"]


def test_redirect_limit_applies(server: Server) -> None:
    with pytest.raises(TooManyRedirects):
        fetch(server.url("/hop"), FetchSettings(allowed_networks=("127.0.0.1/32",), max_redirects=1))


def test_redirect_loop(server: Server) -> None:
    with pytest.raises(TooManyRedirects) as info:
        fetch(server.url("/loop"))
    assert info.value.status_text == "ERROR: VOICE URL REDIRECTS TOO OFTEN"
    assert len(server.requests) == LOCAL.max_redirects + 1


def test_redirect_to_another_loopback_address_is_refused(server: Server) -> None:
    with pytest.raises(UrlRefused, match=r"127\.0\.0\.2"):
        fetch(server.url("/to-private"))
    assert server.requests == ["/to-private"]


def test_redirect_to_ftp_is_refused(server: Server) -> None:
    with pytest.raises(UrlRefused, match="ftp"):
        fetch(server.url("/to-ftp"))


def test_private_address_refused_by_default_without_connecting(server: Server) -> None:
    with pytest.raises(UrlRefused) as info:
        fetch(server.url("/tone.wav"), FetchSettings())
    assert info.value.status_text == "ERROR: VOICE URL REFUSED"
    with pytest.raises(UrlRefused):
        fetch(server.url("/tone.wav", host="localhost"), FetchSettings())
    assert server.requests == []


def test_allow_private_opens_every_local_address(server: Server) -> None:
    assert fetch(server.url("/tone.wav"), FetchSettings(allow_private=True)) == WAV


def test_ipv6_loopback_refused(server: Server) -> None:
    for settings in (FetchSettings(), LOCAL):
        with pytest.raises(UrlRefused, match="::1"):
            fetch(f"http://[::1]:{server.port}/tone.wav", settings)
        with pytest.raises(UrlRefused):
            fetch(f"http://[::ffff:127.0.0.2]:{server.port}/tone.wav", settings)
    assert server.requests == []


def test_ftp_and_other_schemes_refused() -> None:
    for url in ("ftp://127.0.0.1/a.wav", "file:///etc/passwd", "gopher://127.0.0.1/", "/relative.wav"):
        with pytest.raises(UrlRefused):
            fetch(url)


def test_credentials_in_url_refused(server: Server) -> None:
    with pytest.raises(UrlRefused, match="credentials"):
        fetch(f"http://user:pw@127.0.0.1:{server.port}/tone.wav")
    assert server.requests == []


def test_oversized_body_with_content_length(server: Server) -> None:
    settings = FetchSettings(allowed_networks=("127.0.0.1/32",), max_bytes=BIG // 2)
    with pytest.raises(FetchTooLarge, match="Content-Length"):
        fetch(server.url("/big.wav"), settings)


def test_oversized_body_without_content_length(server: Server) -> None:
    settings = FetchSettings(allowed_networks=("127.0.0.1/32",), max_bytes=BIG // 2)
    with pytest.raises(FetchTooLarge, match="body exceeds") as info:
        fetch(server.url("/big-unsized.wav"), settings)
    assert info.value.status_text == "ERROR: VOICE FILE TOO LARGE"
    assert len(fetch(server.url("/big-unsized.wav"))) == BIG + 44


def test_trickling_server_is_cut_off_at_the_total_deadline(server: Server) -> None:
    settings = FetchSettings(allowed_networks=("127.0.0.1/32",), total_timeout_s=1.5)
    started = time.monotonic()
    with pytest.raises(FetchTimeout) as info:
        fetch(server.url("/trickle.wav"), settings)
    elapsed = time.monotonic() - started
    assert info.value.status_text == "ERROR: VOICE URL TIMED OUT"
    # Not a speed assertion: the deadline must have been what stopped it (40 bytes take 20 s).
    assert 1.0 < elapsed < 10.0


def test_connection_refused_is_a_fetch_error(server: Server) -> None:
    with pytest.raises(FetchError) as info:
        fetch("http://127.0.0.1:9/tone.wav")
    assert type(info.value) is FetchError
    assert info.value.status_text == "ERROR: VOICE URL FAILED"


def test_unresolvable_host_is_a_fetch_error() -> None:
    with pytest.raises(FetchError, match="resolve"):
        fetch("http://no-such-host.invalid/tone.wav")


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Resolve the names in `answers` to their addresses, one answer per lookup (the last one repeats);
    returns the names looked up. Literal addresses still go to the real resolver."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        address = answers[host][min(len(lookups), len(answers[host])) - 1]
        return real(address, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


def test_dns_rebinding_is_refused_at_connect_time(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    # The check sees a public address; the connection-time lookup answers loopback.
    lookups = fake_dns(monkeypatch, {"media.example": ["93.184.216.34", "127.0.0.1"]})
    with pytest.raises(UrlRefused, match=r"127\.0\.0\.1"):
        fetch(server.url("/tone.wav", host="media.example"), FetchSettings())
    assert lookups == ["media.example", "media.example"]
    assert server.requests == []


def test_named_host_connects_to_the_checked_address(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"media.example": ["127.0.0.1"]})
    seen_hosts: list[str] = []
    original = Handler.do_GET

    def recording(handler: Handler) -> None:
        seen_hosts.append(handler.headers["Host"])
        original(handler)

    monkeypatch.setattr(Handler, "do_GET", recording)
    assert fetch(server.url("/tone.wav", host="media.example")) == WAV
    assert seen_hosts == [f"media.example:{server.port}"]
