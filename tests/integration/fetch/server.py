"""A real HTTP server on 127.0.0.1 with the answers the fetcher must cope with (prompt tests use it too)."""

from __future__ import annotations

import contextlib
import io
import ssl
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import soundfile as sf


def tone(seconds: float = 0.5, rate: int = 16000, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def wav_file(seconds: float = 0.5, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((tone(seconds, rate) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def mp3_file(seconds: float = 0.5, rate: int = 44100) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, tone(seconds, rate), rate, format="MP3")
    return buf.getvalue()


WAV = wav_file()
MP3 = mp3_file()
HTML = b"<!DOCTYPE html><html><body>Not found, but 200 anyway</body></html>"
BIG = 64 * 1024


@dataclass
class Server:
    """The running server: its base URL and the paths it was asked for."""

    port: int
    requests: list[str] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


class Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        state: Server = self.server.state  # type: ignore[attr-defined]
        state.requests.append(self.path)
        route = ROUTES.get(self.path.split("?")[0])
        if route is None:
            self.answer(404, b"no such file", "text/plain")
        else:
            route(self, state)

    def answer(self, status: int, body: bytes, ctype: str, length: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        with contextlib.suppress(OSError):  # the fetcher may hang up early (size cap, sniffing)
            self.wfile.write(body)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def trickle(self, state: Server) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "audio/wav")
        self.send_header("Content-Length", str(len(WAV)))
        self.end_headers()
        try:
            for byte in WAV[:40]:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass
        self.close_connection = True


class QuietServer(ThreadingHTTPServer):
    """Clients that hang up early (the fetcher's size cap, sniffing) are expected: no tracebacks for them."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


ROUTES: dict[str, Callable[[Handler, Server], None]] = {
    "/tone.wav": lambda h, s: h.answer(200, WAV, "audio/wav"),
    "/tone.mp3": lambda h, s: h.answer(200, MP3, "audio/mpeg"),
    "/mislabelled": lambda h, s: h.answer(200, MP3, "text/html"),
    "/page.mp3": lambda h, s: h.answer(200, HTML, "audio/mpeg"),
    "/data.json": lambda h, s: h.answer(200, b'{"msg": "hello"}', "audio/wav"),
    "/empty.wav": lambda h, s: h.answer(200, b"", "audio/wav"),
    "/big.wav": lambda h, s: h.answer(200, WAV[:44] + bytes(BIG), "audio/wav"),
    "/big-unsized.wav": lambda h, s: h.answer(200, WAV[:44] + bytes(BIG), "audio/wav", length=False),
    "/loop": lambda h, s: h.redirect("/loop2"),
    "/loop2": lambda h, s: h.redirect("/loop"),
    "/hop": lambda h, s: h.redirect("/hop2"),
    "/hop2": lambda h, s: h.redirect(f"http://127.0.0.1:{s.port}/tone.wav"),
    "/to-private": lambda h, s: h.redirect(f"http://127.0.0.2:{s.port}/tone.wav"),
    "/to-ftp": lambda h, s: h.redirect("ftp://127.0.0.1/tone.wav"),
    "/trickle.wav": Handler.trickle,
    "/error": lambda h, s: h.answer(500, b"boom", "text/plain"),
}


@contextlib.contextmanager
def serve(tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    """Run the server on 127.0.0.1 (a free port) in a thread while the block runs; https when tls is given."""
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    state = Server(port=httpd.server_address[1])
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
