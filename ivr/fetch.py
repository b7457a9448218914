"""Fetching voice URLs safely: the seed's `voiceurl` and the URL items of a `matrix_vtts` message.

A URL names a host the client chose, so fetching it must not become a way into our own network (SSRF) or a
way to tie up a worker. The rules, each with its error (docs/prompts.md):

- http and https only, no credentials in the URL (UrlRefused);
- every hop's host is resolved here and checked: private, loopback, link-local, shared, reserved,
  multicast and unspecified addresses (IPv4, IPv6, and IPv4 embedded in IPv6) are refused unless
  `allow_private` is set or the address lies in `allowed_networks` (UrlRefused);
- redirects are followed by hand, each hop checked, at most `max_redirects` (TooManyRedirects);
- the connect timeout and one total deadline cover the whole fetch, trickling bodies included (FetchTimeout);
- the body is capped at `max_bytes`, by Content-Length first, then while streaming (FetchTooLarge);
- a non-2xx answer is FetchHttpError; a body whose first bytes are not WAV, MP3, FLAC, OGG or M4A is NotAudio,
  whatever its Content-Type says.

DNS rebinding: the default transport resolves the host again at connect time, checks those addresses and
connects to the checked address itself (a custom httpcore network backend), so a name cannot resolve to a
public address for the check and a private one for the connection. TLS still runs against the URL's host
name (httpcore passes it as SNI and for certificate verification), so https keeps full verification.
"""

from __future__ import annotations

import codecs
import contextlib
import contextvars
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from ivr.errors import (
    FetchError,
    FetchHttpError,
    FetchTimeout,
    FetchTooLarge,
    NotAudio,
    TooManyRedirects,
    UrlRefused,
)
from ivr.settings import FetchSettings

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SNIFF_BYTES = 12
"""How many leading bytes content sniffing needs (RIFF....WAVE is the longest magic)."""

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("ivr_fetch_deadline", default=None)
"""monotonic() deadline of the fetch running in this thread; the guarded streams never wait past it."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[float]:
    """Bound every read, write and connect of GuardedTransport inside the block by one total deadline.

    Per-read timeouts alone let a server that trickles its answer hold a client for ever; inside this
    block the guarded streams shorten each wait to what is left of `seconds` and fail with a timeout
    once it has passed. Yields the monotonic() deadline. A nested block cannot extend an outer one."""
    until = time.monotonic() + seconds
    outer = _DEADLINE.get()
    if outer is not None:
        until = min(until, outer)
    token = _DEADLINE.set(until)
    try:
        yield until
    finally:
        _DEADLINE.reset(token)


@dataclass(frozen=True)
class Fetched:
    """A fetched voice file: its bytes, the Content-Type the server gave, and the URL after redirects."""

    data: bytes
    content_type: str
    final_url: str


# --- content sniffing ----------------------------------------------------------------------------------


def sniff_audio(head: bytes) -> str:
    """Name the audio container the first bytes announce (wav, mp3, flac, ogg, m4a), else raise NotAudio."""
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3" or _is_mpeg_frame(head):
        return "mp3"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[4:8] == b"ftyp":
        return "m4a"
    raise NotAudio(f"the URL returned {_describe(head)}, not audio")


def _is_mpeg_frame(head: bytes) -> bool:
    # 11 sync bits, then a layer other than 00 (which is AAC's ADTS, not MPEG audio).
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 != 0


def _describe(head: bytes) -> str:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not head:
        return "an empty body"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "HTML"
    if text.startswith(b"<"):
        return "HTML or XML"
    if text.startswith((b"{", b"[")):
        return "JSON"
    try:  # incremental: the sniffed head may end inside a multi-byte character
        decoded = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        decoded = "\x00"
    if all(ch.isprintable() or ch in "\t\r\n" for ch in decoded):
        return "text"
    return "an unrecognised binary format"


# --- address policy ------------------------------------------------------------------------------------


def _unmapped(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address routes to (6to4, Teredo server and client, NAT64)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def is_public_address(ip: IPAddress) -> bool:
    """True for a globally routable unicast address (and any IPv4 it embeds is one too)."""
    ip = _unmapped(ip)
    if isinstance(ip, ipaddress.IPv6Address) and not all(map(is_public_address, _embedded_v4(ip))):
        return False
    special = ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_link_local or ip.is_loopback
    return ip.is_global and not special


class AddressPolicy:
    """Which addresses a voice URL may lead to (FetchSettings.allow_private and allowed_networks)."""

    def __init__(self, settings: FetchSettings) -> None:
        self._allow_private = settings.allow_private
        try:
            self._networks: tuple[IPNetwork, ...] = tuple(
                ipaddress.ip_network(cidr, strict=False) for cidr in settings.allowed_networks
            )
        except ValueError as exc:
            raise ValueError(f"fetch.allowed_networks: {exc}") from None

    def permits(self, ip: IPAddress) -> bool:
        """An address inside allowed_networks always; multicast and unspecified never; else public ones,
        or any unicast address when allow_private is set."""
        ip = _unmapped(ip)
        if any(ip.version == net.version and ip in net for net in self._networks):
            return True
        if ip.is_multicast or ip.is_unspecified:
            return False
        return self._allow_private or is_public_address(ip)

    def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The permitted addresses of host (a name or a literal); UrlRefused when there are none."""
        addresses = resolve_host(host, port)
        permitted = [ip for ip in addresses if self.permits(ip)]
        if not permitted:
            shown = ", ".join(str(ip) for ip in addresses)
            raise UrlRefused(f"{host} resolves to a private or reserved address ({shown})")
        return permitted


def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address of host, in the resolver's order, without duplicates; FetchError when it has none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve {host}: {exc}") from None
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in found:
            found.append(ip)
    return found


def check_url(url: httpx.URL) -> None:
    """Refuse what is not a plain http(s) URL with a host (credentials in a URL are refused too: they end
    up in logs, and `user@host` forms are a classic way to disguise where a URL points)."""
    if url.scheme not in ("http", "https"):
        raise UrlRefused(f"only http and https URLs are fetched, not {url.scheme or 'a relative URL'}")
    if url.userinfo:
        raise UrlRefused("URLs with credentials are refused")
    if not url.host:
        raise UrlRefused("the URL has no host")


# --- the guarded transport -----------------------------------------------------------------------------


def _bounded(timeout: float | None) -> float | None:
    """timeout, shortened so that no wait outlives the current fetch's deadline."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise httpcore.ReadTimeout("total fetch time exceeded")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read, write and TLS handshake ends by the fetch deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves, checks and connects to the checked address itself (the DNS-rebinding guard)."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._sync = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        error: Exception | None = None
        for ip in self._policy.resolve(host, port):
            try:
                stream = self._sync.connect_tcp(
                    str(ip), port, _bounded(timeout), local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            return _DeadlineStream(stream)
        assert error is not None
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise UrlRefused("unix sockets are not fetched")


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        with _httpcore_errors():
            yield from self._inner

    def close(self) -> None:
        closer = getattr(self._inner, "close", None)
        if closer is not None:
            closer()


_HTTPCORE_TO_HTTPX: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.TimeoutException, httpx.ReadTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.RemoteProtocolError),
)


@contextlib.contextmanager
def _httpcore_errors() -> Iterator[None]:
    """Translate httpcore's exceptions into httpx's, as httpx's own transport does."""
    try:
        yield
    except Exception as exc:
        for source, target in _HTTPCORE_TO_HTTPX:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport that only connects to addresses the policy permits, checked at connect time."""

    def __init__(self, policy: AddressPolicy, *, verify: ssl.SSLContext | bool = True) -> None:
        context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
        self._pool = httpcore.ConnectionPool(
            ssl_context=context, max_connections=8, retries=0, network_backend=_GuardedBackend(policy)
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpcore_errors():
            response = self._pool.handle_request(core_request)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


# --- the fetcher ---------------------------------------------------------------------------------------


class UrlFetcher:
    """Fetches one voice URL under FetchSettings' rules (module docstring). Thread-safe; reuse one instance.

    `transport` replaces the guarded default (tests, a proxy): the per-hop address check still runs,
    but the connect-time rebinding guard is then the transport's business.
    """

    def __init__(self, settings: FetchSettings, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self._policy = AddressPolicy(settings)
        self._client = httpx.Client(
            transport=transport or GuardedTransport(self._policy),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "identity", "Accept": "audio/*"},
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> UrlFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(self, url: str) -> Fetched:
        """GET url and return its audio bytes; raises the FetchError subclasses the module docstring lists."""
        try:
            with deadline(self.settings.total_timeout_s) as until:
                return self._follow(_parse(url), until)
        except httpx.TimeoutException as exc:
            raise FetchTimeout(f"{url}: no complete answer within the time limit ({exc})") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None

    def check(self, url: str | httpx.URL) -> None:
        """Refuse url before any connection: scheme, credentials, and where its host resolves.
        (The service calls it at submission; fetch() calls it for every hop.)"""
        url = _parse(url) if isinstance(url, str) else url
        check_url(url)
        self._policy.resolve(url.raw_host.decode("ascii"), url.port or _DEFAULT_PORTS[url.scheme])

    def _follow(self, url: httpx.URL, deadline: float) -> Fetched:
        for _hop in range(self.settings.max_redirects + 1):
            self.check(url)
            with self._client.stream("GET", url, timeout=self._timeout(deadline)) as response:
                if response.is_redirect:
                    url = _next_hop(response)
                    continue
                if not response.is_success:
                    raise FetchHttpError(f"{url}: HTTP {response.status_code} {response.reason_phrase}")
                data = self._read_body(response, deadline)
                content_type = response.headers.get("content-type", "")
                log.debug("fetched %s: %d bytes, %s", url, len(data), content_type)
                return Fetched(data=data, content_type=content_type, final_url=str(url))
        raise TooManyRedirects(f"more than {self.settings.max_redirects} redirects, last to {url}")

    def _timeout(self, deadline: float) -> httpx.Timeout:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchTimeout("total fetch time exceeded")
        return httpx.Timeout(remaining, connect=min(self.settings.connect_timeout_s, remaining))

    def _read_body(self, response: httpx.Response, deadline: float) -> bytes:
        limit = self.settings.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchTooLarge(f"Content-Length {declared} exceeds the limit of {limit} bytes")
        body = bytearray()
        sniffed = False
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise FetchTooLarge(f"the body exceeds the limit of {limit} bytes")
            if not sniffed and len(body) >= SNIFF_BYTES:
                sniff_audio(bytes(body[:SNIFF_BYTES]))
                sniffed = True
            if time.monotonic() > deadline:
                raise FetchTimeout(f"the body took longer than {self.settings.total_timeout_s} s")
        if not sniffed:
            sniff_audio(bytes(body))
        return bytes(body)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _parse(url: str) -> httpx.URL:
    try:
        return httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError) as exc:
        raise UrlRefused(f"invalid URL: {exc}") from None


def _next_hop(response: httpx.Response) -> httpx.URL:
    location = response.headers.get("location", "")
    try:
        return response.url.join(location)
    except httpx.InvalidURL as exc:
        raise FetchError(f"invalid redirect target {location!r}: {exc}") from None
