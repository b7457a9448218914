"""https through the guarded transport: the connection goes to the checked address, while the certificate
is still verified against the URL's host name."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.errors import FetchError
from ivr.fetch import AddressPolicy, GuardedTransport, UrlFetcher
from ivr.settings import FetchSettings
from tests.integration.fetch.server import WAV, Server, serve
from tests.integration.fetch.test_fetch import fake_dns

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]

HOST = "media.example"
LOCAL = FetchSettings(allowed_networks=("127.0.0.1/32",), total_timeout_s=5.0)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for HOST only (not for 127.0.0.1)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={HOST}",
         "-addext", f"subjectAltName=DNS:{HOST}"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[Server]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    with serve(context) as state:
        yield state


def fetcher(certificate: tuple[Path, Path]) -> UrlFetcher:
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    return UrlFetcher(LOCAL, transport=GuardedTransport(AddressPolicy(LOCAL), verify=trust))


def test_https_by_name_is_verified_and_fetched(
    tls_server: Server, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dns(monkeypatch, {HOST: ["127.0.0.1"]})
    with fetcher(certificate) as client:
        got = client.fetch(f"https://{HOST}:{tls_server.port}/tone.wav")
    assert got.data == WAV
    assert tls_server.requests == ["/tone.wav"]


def test_certificate_must_match_the_url_host(tls_server: Server, certificate: tuple[Path, Path]) -> None:
    with fetcher(certificate) as client, pytest.raises(FetchError, match=r"CERTIFICATE_VERIFY_FAILED"):
        client.fetch(f"https://127.0.0.1:{tls_server.port}/tone.wav")
    assert tls_server.requests == []


def test_untrusted_certificate_is_refused(tls_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {HOST: ["127.0.0.1"]})
    with UrlFetcher(LOCAL) as client, pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
        client.fetch(f"https://{HOST}:{tls_server.port}/tone.wav")
