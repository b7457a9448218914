"""The URL rules of ivr.fetch without a network: address policy, sniffing, redirects (httpx.MockTransport)."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from ivr.errors import FetchHttpError, FetchTooLarge, NotAudio, TooManyRedirects, UrlRefused
from ivr.fetch import AddressPolicy, UrlFetcher, is_public_address, sniff_audio
from ivr.settings import FetchSettings

WAV_HEAD = b"RIFF\x24\x00\x00\x00WAVEfmt "


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "127.0.0.2",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
        "2002:a00:1::1",
        "192.0.2.1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not is_public_address(ip)
    assert not AddressPolicy(FetchSettings()).permits(ip)


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(address: str) -> None:
    assert AddressPolicy(FetchSettings()).permits(ipaddress.ip_address(address))


def test_allowed_networks_are_exact() -> None:
    policy = AddressPolicy(FetchSettings(allowed_networks=("127.0.0.1/32", "10.9.0.0/16")))
    allowed = ["127.0.0.1", "::ffff:127.0.0.1", "10.9.200.1", "8.8.8.8"]
    refused = ["127.0.0.2", "::1", "10.10.0.1", "192.168.0.1"]
    assert all(policy.permits(ipaddress.ip_address(a)) for a in allowed)
    assert not any(policy.permits(ipaddress.ip_address(a)) for a in refused)


def test_allow_private_still_refuses_multicast_and_unspecified() -> None:
    policy = AddressPolicy(FetchSettings(allow_private=True))
    assert policy.permits(ipaddress.ip_address("192.168.1.1"))
    assert policy.permits(ipaddress.ip_address("::1"))
    assert not policy.permits(ipaddress.ip_address("0.0.0.0"))
    assert not policy.permits(ipaddress.ip_address("239.1.1.1"))


def test_bad_allowed_network_names_the_setting() -> None:
    with pytest.raises(ValueError, match="allowed_networks"):
        AddressPolicy(FetchSettings(allowed_networks=("not-a-cidr",)))


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (WAV_HEAD, "wav"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00", "mp3"),
        (b"\xff\xfb\x90\x64" + bytes(8), "mp3"),
        (b"fLaC\x00\x00\x00\x22" + bytes(4), "flac"),
        (b"OggS\x00\x02" + bytes(6), "ogg"),
        (b"\x00\x00\x00\x20ftypM4A ", "m4a"),
    ],
)
def test_sniff_accepts_audio(head: bytes, kind: str) -> None:
    assert sniff_audio(head) == kind


@pytest.mark.parametrize(
    ("head", "described"),
    [
        (b"<!DOCTYPE html><html>", "HTML"),
        (b"\xef\xbb\xbf  <html lang=en>", "HTML"),
        (b'<?xml version="1.0"?>', "XML"),
        (b'{"msg": []}', "JSON"),
        (b"Hello there, plain text", "text"),
        ("Buenos días señor".encode()[:12], "text"),
        (b"", "empty"),
        (b"\xff\xf1\x50\x80" + bytes(8), "binary"),  # AAC ADTS: not something we decode
        (b"RIFF\x00\x00\x00\x00AVI LIST", "binary"),
    ],
)
def test_sniff_refuses_the_rest(head: bytes, described: str) -> None:
    with pytest.raises(NotAudio, match=described):
        sniff_audio(head)


def mock_fetcher(handler: httpx.MockTransport, **settings: object) -> UrlFetcher:
    return UrlFetcher(FetchSettings(allowed_networks=("127.0.0.1/32",), **settings), transport=handler)  # type: ignore[arg-type]


def test_redirect_hops_are_each_checked() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/a":
            return httpx.Response(302, headers={"Location": "/b"})
        return httpx.Response(301, headers={"Location": "http://10.0.0.5/c.wav"})

    with pytest.raises(UrlRefused, match=r"10\.0\.0\.5"):
        mock_fetcher(httpx.MockTransport(handler)).fetch("http://127.0.0.1/a")
    assert seen == ["http://127.0.0.1/a", "http://127.0.0.1/b"]


def test_redirect_count() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(307, headers={"Location": f"/{int(request.url.path[1:]) + 1}"})

    with pytest.raises(TooManyRedirects, match="more than 3"):
        mock_fetcher(httpx.MockTransport(handler), max_redirects=3).fetch("http://127.0.0.1/0")


def test_status_in_the_detail() -> None:
    fetcher = mock_fetcher(httpx.MockTransport(lambda r: httpx.Response(403, content=b"no")))
    with pytest.raises(FetchHttpError, match="HTTP 403 Forbidden"):
        fetcher.fetch("http://127.0.0.1/x.wav")


def test_size_cap_counts_decoded_bytes() -> None:
    body = WAV_HEAD + bytes(5000)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(body))

    fetched = mock_fetcher(httpx.MockTransport(handler), max_bytes=len(body)).fetch("http://127.0.0.1/")
    assert len(fetched.data) == len(body)
    with pytest.raises(FetchTooLarge):
        mock_fetcher(httpx.MockTransport(handler), max_bytes=len(body) - 1).fetch("http://127.0.0.1/")


def test_invalid_urls_refused() -> None:
    fetcher = mock_fetcher(httpx.MockTransport(lambda r: httpx.Response(200)))
    urls = ("http://", "http:///x.wav", "not a url", "https://u@127.0.0.1/x.wav", "data:audio/wav;base64,AA")
    for url in urls:
        with pytest.raises(UrlRefused):
            fetcher.fetch(url)
