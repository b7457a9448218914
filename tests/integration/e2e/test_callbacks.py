"""`ivrgate serve` end to end, beyond the seed's example: a v1 TTS submission with a `callback_url` gets
its final status POSTed, signed, to a real HTTP receiver on 127.0.0.1 once the call has ended; and the
Python sample asks the callee for a key (`tts --response`) and reads `R = 1` back."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from api.core.signing import SIGNATURE_HEADER, verify
from api.runtime.callbacks import DELIVERY_HEADER
from tests.integration.e2e.conftest import PASSWORD, ROOT, USERNAME, PhoneProcess, Server, fields

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PHONE = "12506063167"
ANSWERED_R1 = re.compile(r"Voice call answered, duration \d+ seconds\. R = 1")


@dataclass(frozen=True)
class Posted:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every POST and answers 204."""

    def __init__(self) -> None:
        self.posts: queue.Queue[Posted] = queue.Queue()
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                posts.put(Posted(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def next_post(self, timeout: float) -> Posted:
        try:
            return self.posts.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no callback within {timeout} s") from None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()


def test_v1_callback_is_posted_signed_after_the_call(
    serve: Callable[..., Server], phone: Callable[..., PhoneProcess], receiver: Receiver
) -> None:
    far = phone("--press", "1", "--wait", "1")
    server = serve(far.port, IVRGATE_CALLBACKS__ALLOW_PRIVATE="true",
                   IVRGATE_CALLBACKS__POLL_INTERVAL_S="0.2")
    auth = (USERNAME, PASSWORD)
    submission = {"type": "tts", "to": [PHONE], "text": "Press 1 to confirm.", "response": True,
                  "callback_url": receiver.url("/hooks/status?source=ivrgate")}
    answer = httpx.post(f"{server.url}/v1/messages", json=submission, auth=auth, timeout=30)
    assert answer.status_code == 202, answer.text
    (submitted,) = answer.json()["messages"]
    assert submitted["code"] == 100

    posted = receiver.next_post(timeout=90)
    assert posted.path == "/hooks/status?source=ivrgate"
    assert posted.headers["content-type"] == "application/json"
    body = json.loads(posted.body)
    assert body["ID"] == submitted["id"] and body["STATUSCODE"] == 200 and body["RESPONSE"] == "1"
    assert ANSWERED_R1.fullmatch(body["STATUSTXT"]), body
    assert body["DURATION"] > 0 and body["COST"] > 0  # written when the call had ended and was charged
    final = server.status(submitted["id"])
    assert (final["STATUSCODE"], final["STATUSTXT"]) == ("200", body["STATUSTXT"])

    secret = httpx.get(f"{server.url}/v1/callbacks/secret", auth=auth).json()["secret"]
    signature = posted.headers[SIGNATURE_HEADER.lower()]
    assert verify(secret, posted.body, signature)
    assert not verify(secret, posted.body.replace(b"R = 1", b"R = 2"), signature)
    assert posted.headers[DELIVERY_HEADER.lower()].isdigit()
    assert server.stop() == 0  # the sender thread stops with the server
    assert receiver.posts.empty()  # delivered once: a 2xx answer is final
    (call,) = far.results(timeout=30)
    assert call["pressed"] == "1"


def test_python_sample_asks_for_a_key(
    serve: Callable[..., Server], phone: Callable[..., PhoneProcess]
) -> None:
    far = phone("--press", "1", "--wait", "1")
    server = serve(far.port)
    base = [sys.executable, str(ROOT / "samples" / "clients" / "matrix.py"), "--url", server.url,
            "--username", USERNAME, "--password", PASSWORD, "--phone", PHONE]
    submit = [*base, "tts", "--txt", "Press 1 to confirm.", "--response", "--repeat", "0",
              "--gender", "female", "--language", "us", "--check"]
    done = subprocess.run(submit, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (done.stdout, done.stderr)
    submitted = fields(done.stdout.replace("Matrix API Response: ", ""))
    server.wait_final(submitted["ID"])
    done = subprocess.run([*base, "status", "--id", submitted["ID"]], capture_output=True, text=True,
                          timeout=60)
    status = fields(done.stdout.replace("Matrix API Response: ", ""))
    assert ANSWERED_R1.fullmatch(status["STATUSTXT"]) and status["RESPONSE"] == "1", status
    assert server.stop() == 0
    (call,) = far.results(timeout=30)
    assert call["pressed"] == "1"
