"""Decompression bombs through every path that decodes audio: `ivrgate prompt --file`, and a running
`ivrgate serve` (matrix_voice, v1 `audio_base64`, `/ui/send/listen`). Each is refused with 500
`ERROR: VOICE FILE TOO LARGE` while the peak memory of the process that decoded stays bounded: the CLI's
ru_maxrss, serve's VmHWM before and after (without the limit, one bomb cost 7.3 GB)."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.make_fixtures import flac_bomb
from tests.procfs import peak_kib

from .conftest import PASSWORD, ROOT, USERNAME, Server, clean_env, free_tcp_port, ivrgate, wait_healthy

PEAK_BOUND_KIB = 300 * 1024
"""The CLI's whole peak (Python, numpy, scipy and the TTS libraries included)."""
GROWTH_BOUND_KIB = 100 * 1024
"""What serve's peak may grow by over all the bombs of one test."""
TOO_LARGE = "ERROR: VOICE FILE TOO LARGE"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The issue's bomb (299 s of 7.1 silence at 384 kHz, 1 MB of FLAC) and one whose header hides its
    length (FLAC's "unknown" total), so only decoding can stop it."""
    directory = tmp_path_factory.mktemp("bombs")
    return {"header": flac_bomb(directory / "bomb.flac"),
            "hidden": flac_bomb(directory / "hidden.flac", 40, known_length=False)}


def run_measured(data_dir: Path, *args: str) -> tuple[int, str, int]:
    """Run `python -m api --data DIR ARGS...`: its exit status, stderr and peak resident memory (KiB)."""
    err_path = data_dir / "stderr.txt"
    data_dir.mkdir(parents=True, exist_ok=True)
    with err_path.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "api", "--data", str(data_dir), *args], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=err, env=clean_env())
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err_path.read_text(), usage.ru_maxrss


@pytest.mark.parametrize("bomb", ["header", "hidden"])
def test_prompt_file_refuses_a_bomb_in_bounded_memory(
    tmp_path: Path, bombs: dict[str, Path], bomb: str
) -> None:
    status, stderr, peak = run_measured(tmp_path / "data", "prompt", "--file", str(bombs[bomb]),
                                        "-o", str(tmp_path / "out.wav"))
    assert status == 1, stderr
    assert TOO_LARGE in stderr and "Traceback" not in stderr, stderr
    print(f"prompt --file {bomb}: peak {peak} KiB")
    assert peak < PEAK_BOUND_KIB, f"peak {peak} KiB"
    assert not (tmp_path / "out.wav").exists()


@pytest.fixture
def api_only(tmp_path: Path) -> Iterator[Server]:
    """`ivrgate serve --no-worker` with one user, on a free port."""
    data = tmp_path / "data"
    ivrgate(data, "user", "add", USERNAME, "--password", PASSWORD, "--credit", "10.00")
    port = free_tcp_port()
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "api", "--data", str(data), "serve", "--no-worker",
                                 "--port", str(port)], cwd=ROOT, env=clean_env(), stdout=sink,
                                stderr=subprocess.STDOUT, text=True)
    server = Server(proc, f"http://127.0.0.1:{port}", data, log)
    try:
        wait_healthy(server)
        yield server
    finally:
        proc.kill()
        proc.wait(10)


def ui_client(server: Server) -> tuple[httpx.Client, str]:
    """An HTTP client logged in to /ui, and the CSRF token of its session."""
    client = httpx.Client(base_url=server.url, timeout=120)
    token = CSRF.search(client.get("/ui/login").text)
    assert token is not None
    form = {"csrf": token.group(1), "username": USERNAME, "password": PASSWORD}
    answer = client.post("/ui/login", data=form, follow_redirects=True)
    assert answer.status_code == 200, answer.text
    page = CSRF.search(client.get("/ui/send").text)
    assert page is not None
    return client, page.group(1)


def test_every_http_path_refuses_bombs_in_bounded_memory(api_only: Server, bombs: dict[str, Path]) -> None:
    client, csrf = ui_client(api_only)
    before = peak_kib(api_only.proc.pid)
    for name, path in bombs.items():
        data = path.read_bytes()
        for _ in range(3):
            legacy = httpx.post(f"{api_only.url}/matrix_voice", timeout=120,
                                data={"username": USERNAME, "password": PASSWORD, "phone": "12125551234"},
                                files={"voicefile": (path.name, data, "audio/flac")})
            assert TOO_LARGE in legacy.text, (name, legacy.text)
        v1 = httpx.post(f"{api_only.url}/v1/messages", auth=(USERNAME, PASSWORD), timeout=120,
                        json={"type": "voice", "to": ["12125551234"],
                              "audio_base64": base64.b64encode(data).decode()})
        assert (v1.status_code, v1.json()["code"], v1.json()["status"]) == (413, 500, TOO_LARGE), v1.text
        listen = client.post("/ui/send/listen", headers={"X-CSRF-Token": csrf},
                             files={"voicefile": (path.name, data, "audio/flac")}, follow_redirects=True)
        assert listen.headers["content-type"].startswith("text/html"), listen.headers
        assert "VOICE FILE TOO LARGE" in listen.text, (name, listen.text)
    growth = peak_kib(api_only.proc.pid) - before
    print(f"serve's peak: {before} KiB before, grew by {growth} KiB")
    assert growth < GROWTH_BOUND_KIB, f"serve's peak grew by {growth} KiB"
    assert api_only.proc.poll() is None
