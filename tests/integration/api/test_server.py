"""The sample clients (Python, curl, Perl) run as they are against a real uvicorn server on 127.0.0.1,
and the server refuses a 50 MB upload without reading it."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from store.db import Database
from tests.integration.api.conftest import DNC_PHONE, FIXED_FR, seed
from tests.integration.fetch.server import Server, serve
from tests.integration.store.postgres import free_tcp_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
CLIENTS = ROOT / "samples" / "clients"
HAS_PERL = subprocess.run(["perl", "-MLWP::UserAgent", "-MJSON", "-e1"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def audio() -> Iterator[Server]:
    with serve() as state:
        yield state


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("server")
    database = Database.open(f"sqlite:///{data / 'ivrgate.db'}")
    database.upgrade()
    seed(database, PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    database.dispose()
    port = free_tcp_port()
    # an API process of a deployment with an SMSC that another process binds to: SMS are accepted
    env = {**os.environ, "IVRGATE_DATA_DIR": str(data), "IVRGATE_FETCH__ALLOW_PRIVATE": "true",
           "IVRGATE_SMS__SYSTEM_ID": "ivrgate", "IVRGATE_SMS_SERVICE__ENABLED": "false"}
    env.pop("IVRGATE_DATABASE_URL", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "api.fronts.app:app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "uvicorn exited"
        try:
            httpx.get(f"{url}/sms_rate", params={"phone": "12506058145"}, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("uvicorn did not start")


def environment(base_url: str, audio: Server, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "MATRIX_URL": base_url,
        "MATRIX_USERNAME": "user@hotmail.com",
        "MATRIX_PASSWORD": "pass72727",
        "MATRIX_VOICEURL": audio.url("/tone.mp3"),
        **extra,
    }


def run_client(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def codes(output: str) -> list[int]:
    return [int(code) for code in re.findall(r"STATUSCODE: (\d+)", output)]


EXAMPLES = [
    "sms",
    "group",
    "tts",
    "rate",
    "php",
    "post",
    "carrier",
    "balance",
    "voice",
    "voiceurl",
    "vtts",
    "status",
]
CLIENT_COMMANDS = {
    "python": [sys.executable, str(CLIENTS / "matrix.py")],
    "curl": ["sh", str(CLIENTS / "matrix.sh")],
    "perl": ["perl", str(CLIENTS / "matrix.pl")],
}
PERL_EXAMPLES = {"sms", "group", "tts", "rate", "carrier", "balance", "voice", "voiceurl", "vtts", "status"}


@pytest.mark.parametrize("client", list(CLIENT_COMMANDS))
def test_every_sample_client_example(base_url: str, audio: Server, client: str) -> None:
    if client == "perl" and not HAS_PERL:
        pytest.skip("perl LWP::UserAgent and JSON are not installed (Debian: libwww-perl libjson-perl)")
    if client == "curl" and shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    env = environment(base_url, audio)
    message_id = ""
    for example in EXAMPLES:
        if client == "perl" and example not in PERL_EXAMPLES:
            continue
        if example == "status":
            env["MATRIX_ID"] = message_id
        output = run_client([*CLIENT_COMMANDS[client], example], env)
        assert client == "curl" or output.startswith("Matrix API Response: "), output
        assert codes(output) or "BALANCE:" in output or "RATE:" in output or "LINETYPE:" in output, output
        assert all(code == 200 or (example == "status" and code == 100) for code in codes(output)), (
            example,
            output,
        )
        found = re.search(r"\bID: ([0-9a-f]{32})$", output, re.MULTILINE)
        if example == "tts" and found:
            message_id = found.group(1)
    assert message_id


def test_python_client_reports_refusals(base_url: str, audio: Server) -> None:
    env = environment(base_url, audio, MATRIX_PASSWORD="wrong")
    done = subprocess.run(
        [sys.executable, str(CLIENTS / "matrix.py"), "balance", "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "STATUSCODE: 505" in done.stdout
    output = run_client(
        [sys.executable, str(CLIENTS / "matrix.py"), "sms", "--phone", f"12506063167,{DNC_PHONE},{FIXED_FR}"],
        environment(base_url, audio),
    )
    assert codes(output) == [200, 502, 200]


def _raw_post(url: str, head: bytes, chunks: int) -> tuple[bytes, int]:
    """POST by hand on a socket; (the answer, how many 1 MiB chunks went out before it came)."""
    host, port = url.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        answer = b""
        for _ in range(chunks):
            with contextlib.suppress(BlockingIOError):
                answer += sock.recv(65536)
            if answer:
                break
            try:
                sock.sendall(b"0" * (1024 * 1024))
                sent += 1
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        sock.settimeout(10)
        try:
            while b"TIMESTAMP" not in answer:
                more = sock.recv(65536)
                if not more:
                    break
                answer += more
        except (ConnectionResetError, TimeoutError):
            pass
    return answer, sent


def test_declared_50_mb_upload_answered_at_once(base_url: str) -> None:
    head = (
        b"POST /matrix_voice HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 52428800\r\n\r\n"
    )
    answer, sent = _raw_post(base_url, head, 50)
    assert b"HTTP/1.1 200" in answer and b"STATUSTXT: ERROR: VOICE FILE TOO LARGE" in answer
    assert sent < 50


def test_chunked_50_mb_upload_cut_off(base_url: str) -> None:
    head = (
        b"POST /matrix_voice HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"100000\r\n" + b"0" * 0x100000 + b"\r\n"
    host, port = base_url.removeprefix("http://").split(":")
    sent = 0
    answer = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        preamble = b'--b\r\nContent-Disposition: form-data; name="voicefile"; filename="a"\r\n\r\n'
        sock.sendall(head + b"%x\r\n" % len(preamble) + preamble + b"\r\n")
        sock.settimeout(0.05)
        for _ in range(50):
            try:
                sock.sendall(chunk)
                sent += 1
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            try:
                answer += sock.recv(65536)
                if answer:
                    break
            except TimeoutError:
                pass
        sock.settimeout(10)
        try:
            while b"TIMESTAMP" not in answer:
                more = sock.recv(65536)
                if not more:
                    break
                answer += more
        except (ConnectionResetError, TimeoutError):
            pass
    assert b"ERROR: VOICE FILE TOO LARGE" in answer, (sent, answer[:300])
    assert sent < 20


MIB = 1024 * 1024
V1_UPLOADS = [  # (path, a body size the limit lets through, a declared size it refuses at once, the refusal)
    ("/v1/messages", 13 * MIB, 15 * MIB, b"VOICE FILE TOO LARGE"),  # 10 MiB of audio as base64 JSON
    ("/v1/messages/voice", 10 * MIB, 11 * MIB, b"VOICE FILE TOO LARGE"),  # multipart
    ("/v1/dnc/import", 4 * MIB, 6 * MIB, b"REQUEST TOO LARGE"),  # CSV
    ("/v1/groups/1/members/import", 4 * MIB, 6 * MIB, b"REQUEST TOO LARGE"),  # CSV
    ("/v1/groups/1/members", MIB // 2, 2 * MIB, b"REQUEST TOO LARGE"),  # no upload: 1 MiB
]


@pytest.mark.parametrize(("path", "passes", "refused", "refusal"), V1_UPLOADS)
def test_v1_upload_body_limits(base_url: str, path: str, passes: int, refused: int, refusal: bytes) -> None:
    # without credentials: a body under the limit reaches the route, which answers 401
    body = b"x" * passes
    answer = httpx.post(f"{base_url}{path}", content=body, timeout=60,
                        headers={"Content-Type": "application/octet-stream"})
    assert answer.status_code == 401 and refusal.decode() not in answer.text, answer.text[:300]
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {refused}\r\n\r\n").encode()
    assert refusal in _answer_to_head(base_url, head)  # answered before any byte of the body was sent


def _answer_to_head(url: str, head: bytes) -> bytes:
    """Send only a request's head; the complete answer (its Content-Length decides where it ends)."""
    host, port = url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        while True:
            top, _, body = answer.partition(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length: *(\d+)", top)
            if length and len(body) >= int(length.group(1)):
                return answer
            more = sock.recv(65536)
            if not more:
                return answer
            answer += more


def test_openapi_lists_each_operation_once(base_url: str) -> None:
    document = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
    operation_ids = [op["operationId"] for item in document["paths"].values() for op in item.values()
                     if isinstance(op, dict) and "operationId" in op]
    assert len(operation_ids) == len(set(operation_ids))
    assert "get" in document["paths"]["/healthz"] and "get" in document["paths"]["/metrics"]


def test_openapi_document_builds_without_warnings(tmp_path: Path) -> None:
    from api.core.settings import Settings
    from api.fronts.app import create_app

    app = create_app(Settings(data_dir=tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FastAPI warns "Duplicate Operation ID" for a route mounted twice
        document = app.openapi()
    assert {"/healthz", "/metrics", "/v1/messages"} <= set(document["paths"])
