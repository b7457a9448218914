"""Hostile audio through every path that decodes it: `ivrgate prompt --file`, and a running `ivrgate
serve` (matrix_voice uploads, v1 `audio_base64`, v1 `audio_url` fetched from 127.0.0.1, `/ui/send/listen`).

Decompression bombs are refused with 500 `ERROR: VOICE FILE TOO LARGE` while the peak memory of the
process that decoded stays bounded: the CLI's ru_maxrss, serve's VmHWM before and after (without the
limit, one bomb cost 7.3 GB). Truncated files and headers that lie are refused with 500 `ERROR: CORRUPT
AUDIO FILE`, and nothing is queued."""

from __future__ import annotations

import base64
import functools
import io
import re
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile

from tests.fixtures.make_fixtures import flac_bomb
from tests.procfs import peak_kib

from .conftest import (
    PASSWORD,
    ROOT,
    USERNAME,
    Server,
    clean_env,
    fields,
    ivrgate,
    launch_serve,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PEAK_BOUND_KIB = 300 * 1024
"""The CLI's whole peak (Python, numpy, scipy and the TTS libraries included)."""
GROWTH_BOUND_KIB = 100 * 1024
"""What serve's peak may grow by over all the bombs of one test."""
TOO_LARGE = "ERROR: VOICE FILE TOO LARGE"
CORRUPT = "ERROR: CORRUPT AUDIO FILE"
PHONE = "12125551234"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The issue's bomb (299 s of 7.1 silence at 384 kHz, 1 MB of FLAC) and one whose header hides its
    length (FLAC's "unknown" total), so only decoding can stop it."""
    directory = tmp_path_factory.mktemp("bombs")
    return {"header": flac_bomb(directory / "bomb.flac"),
            "hidden": flac_bomb(directory / "hidden.flac", 40, known_length=False)}


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Half an MP3 (cut between frames: its Xing tag tells), a WAV cut at 100 bytes, a WAV whose header
    claims 10 hours over 1 s of samples."""
    directory = tmp_path_factory.mktemp("broken")
    t = np.arange(441000) / 44100
    buffer = io.BytesIO()
    soundfile.write(buffer, 0.5 * np.sin(2 * np.pi * 440 * t), 44100, format="MP3", subtype="MPEG_LAYER_III")
    mp3 = buffer.getvalue()
    half = mp3.index(b"\xff\xfb", len(mp3) // 2)  # a frame boundary past the middle
    buffer = io.BytesIO()
    soundfile.write(buffer, 0.5 * np.sin(2 * np.pi * 440 * t[:8000]), 8000, format="WAV", subtype="PCM_16")
    wav = buffer.getvalue()
    files = {"half.mp3": mp3[:half], "cut.wav": wav[:100],
             "ten_hours.wav": wav[:40] + struct.pack("<I", 10 * 3600 * 8000 * 2) + wav[44:]}
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return {name: directory / name for name in files}


LAUNCHER = (
    "import resource, subprocess, sys\n"
    "status = subprocess.call(sys.argv[2:])\n"
    "with open(sys.argv[1], 'w') as out:\n"
    "    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(status)\n"
)
"""Runs a command and writes its peak resident memory. A child's ru_maxrss counts what it shared with its
parent between fork and exec, so the command is started by this small launcher, not by pytest (which is
hundreds of MB by the time this test runs)."""


def run_measured(data_dir: Path, *args: str) -> tuple[int, str, int]:
    """Run `python -m api --data DIR ARGS...`: its exit status, stderr and peak resident memory (KiB)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    peak_path = data_dir / "peak.txt"
    done = subprocess.run([sys.executable, "-c", LAUNCHER, str(peak_path), sys.executable, "-m", "api",
                           "--data", str(data_dir), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=clean_env())
    return done.returncode, done.stderr, int(peak_path.read_text())


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


@pytest.mark.parametrize("name", ["half.mp3", "cut.wav", "ten_hours.wav"])
def test_prompt_file_refuses_truncated_audio(tmp_path: Path, broken: dict[str, Path], name: str) -> None:
    status, stderr, _ = run_measured(tmp_path / "data", "prompt", "--file", str(broken[name]))
    assert status == 1 and CORRUPT in stderr and "Traceback" not in stderr, stderr


@pytest.fixture(scope="module")
def file_server(bombs: dict[str, Path], broken: dict[str, Path]) -> Iterator[str]:
    """Every bomb and broken file, served over HTTP on 127.0.0.1; the base URL."""
    directory = bombs["header"].parent
    for path in [*bombs.values(), *broken.values()]:
        if path.parent != directory:
            (directory / path.name).write_bytes(path.read_bytes())

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def api_only(tmp_path: Path) -> Iterator[Server]:
    """`ivrgate serve --no-worker` with one user, on a free port, fetching voice URLs from 127.0.0.1."""
    data = tmp_path / "data"
    ivrgate(data, "user", "add", USERNAME, "--password", PASSWORD, "--credit", "10.00")
    server = launch_serve(data, tmp_path / "serve.log", clean_env(IVRGATE_FETCH__ALLOW_PRIVATE="true"),
                          "--no-worker")
    try:
        yield server
    finally:
        server.proc.kill()
        server.proc.wait(10)


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


def refusals(server: Server, client: httpx.Client, csrf: str, path: Path, url: str) -> dict[str, str]:
    """Send one file through every HTTP path; each path's status text (v1: also its HTTP status)."""
    data = path.read_bytes()
    legacy = httpx.post(f"{server.url}/matrix_voice", timeout=120,
                        data={"username": USERNAME, "password": PASSWORD, "phone": PHONE},
                        files={"voicefile": (path.name, data, "application/octet-stream")})
    encoded = base64.b64encode(data).decode()
    by_base64 = httpx.post(f"{server.url}/v1/messages", auth=(USERNAME, PASSWORD), timeout=120,
                           json={"type": "voice", "to": [PHONE], "audio_base64": encoded})
    by_url = httpx.post(f"{server.url}/v1/messages", auth=(USERNAME, PASSWORD), timeout=120,
                        json={"type": "voice", "to": [PHONE], "audio_url": f"{url}/{path.name}"})
    listen = client.post("/ui/send/listen", headers={"X-CSRF-Token": csrf}, follow_redirects=True,
                         files={"voicefile": (path.name, data, "application/octet-stream")})
    assert listen.headers["content-type"].startswith("text/html"), listen.headers
    shown = re.search(r"ERROR: [A-Z ]+", listen.text)
    answer = fields(legacy.text)
    return {"matrix_voice": f"{answer.get('STATUSCODE')} {answer.get('STATUSTXT')}",
            "v1 audio_base64": f"{by_base64.status_code} {by_base64.json()['status']}",
            "v1 audio_url": f"{by_url.status_code} {by_url.json()['status']}",
            "listen": shown.group(0).strip() if shown else listen.text}


def test_every_http_path_refuses_bombs_in_bounded_memory(
    api_only: Server, bombs: dict[str, Path], file_server: str
) -> None:
    client, csrf = ui_client(api_only)
    before = peak_kib(api_only.proc.pid)
    for path in bombs.values():
        for _ in range(3):
            answers = refusals(api_only, client, csrf, path, file_server)
            assert answers == {"matrix_voice": f"500 {TOO_LARGE}", "v1 audio_base64": f"413 {TOO_LARGE}",
                               "v1 audio_url": f"413 {TOO_LARGE}", "listen": TOO_LARGE}, answers
    growth = peak_kib(api_only.proc.pid) - before
    print(f"serve's peak: {before} KiB before, grew by {growth} KiB")
    assert growth < GROWTH_BOUND_KIB, f"serve's peak grew by {growth} KiB"
    assert api_only.proc.poll() is None


def test_every_http_path_refuses_truncated_audio(
    api_only: Server, broken: dict[str, Path], file_server: str
) -> None:
    client, csrf = ui_client(api_only)
    for path in broken.values():
        answers = refusals(api_only, client, csrf, path, file_server)
        assert answers == {"matrix_voice": f"500 {CORRUPT}", "v1 audio_base64": f"422 {CORRUPT}",
                           "v1 audio_url": f"422 {CORRUPT}", "listen": CORRUPT}, (path.name, answers)
    listed = httpx.get(f"{api_only.url}/v1/messages", auth=(USERNAME, PASSWORD)).json()
    assert listed["items"] == []
