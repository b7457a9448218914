#!/usr/bin/env python3
"""The seed's client examples in Python, standard library only (urllib), against an ivrgate server.

    MATRIX_URL=http://127.0.0.1:8080 MATRIX_USERNAME=user@hotmail.com MATRIX_PASSWORD=pass72727 \
        python3 samples/clients/matrix.py tts --phone 12506063167 --txt 'Adam, web server is down'

Every example prints the gateway's answer as the seed's samples do ("Matrix API Response: ...") and
exits 1 on an HTTP error (the seed's `die "HTTP Error"`). The answer's STATUSCODE tells success (0-399)
from refusal; `--check` also exits 2 when it is not a success.

Examples (the seed's order): sms, group, status, tts, rate, php (GET query string), post (the Java and
C# form POST), carrier, balance, voice (multipart upload), voiceurl, vtts (JSON body).

`tts` sends the seed's example options (repeat=1, gender=male, language=us, response=0) unless told
otherwise: `tts --response` asks the callee for a key, and `status --id ID` then shows it (R = 1).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLE_WAV = HERE.parent / "prompts" / "short.wav"


def post_form(url: str, fields: dict[str, str]) -> str:
    """POST application/x-www-form-urlencoded, as the seed's Perl, Java and C# samples do."""
    body = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    return _send(request)


def get_query(url: str, fields: dict[str, str]) -> str:
    """GET with a query string, as the seed's PHP sample does."""
    return _send(urllib.request.Request(f"{url}?{urllib.parse.urlencode(fields)}"))


def post_multipart(url: str, fields: dict[str, str], file_field: str, path: Path) -> str:
    """POST multipart/form-data with one file, as the seed's matrix_voice sample does."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        disposition = f'Content-Disposition: form-data; name="{name}"'
        parts.append(f"--{boundary}\r\n{disposition}\r\n\r\n{value}\r\n".encode())
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{path.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    parts.append(head.encode() + path.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    request = urllib.request.Request(url, data=b"".join(parts), method="POST")
    request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    return _send(request)


def post_json(url: str, document: dict[str, object]) -> str:
    """POST a JSON body, as the seed's matrix_vtts sample does."""
    request = urllib.request.Request(url, data=json.dumps(document).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    return _send(request)


def _send(request: urllib.request.Request) -> str:
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return str(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"HTTP Error {exc.code}") from None
    except urllib.error.URLError as exc:
        raise SystemExit(f"HTTP Error: {exc.reason}") from None


def status_code(answer: str) -> int | None:
    """The (top-level) STATUSCODE of a text or JSON answer."""
    if answer.lstrip().startswith("{"):
        return int(json.loads(answer)["STATUSCODE"])
    found = re.search(r"^STATUSCODE: (\d+)$", answer, re.MULTILINE)
    return int(found.group(1)) if found else None


def run(args: argparse.Namespace) -> str:
    base = args.url.rstrip("/")
    account = {"username": args.username, "password": args.password}
    example = args.example
    if example == "sms":
        fields = {**account, "phone": args.phone, "txt": args.txt, "tts": "1"}
        if args.callerid:
            fields["callerid"] = args.callerid
        return post_form(f"{base}/matrix", fields)
    if example == "group":
        return post_form(f"{base}/matrix", {**account, "group": args.group, "txt": args.txt})
    if example == "status":
        return post_form(f"{base}/matrix_status", {**account, "id": args.id})
    if example == "tts":
        options = {"repeat": args.repeat, "gender": args.gender, "language": args.language,
                   "response": args.response}
        return post_form(f"{base}/matrix_tts", {**account, "phone": args.phone, "txt": args.txt, **options})
    if example == "rate":
        return post_form(f"{base}/sms_rate", {"phone": args.phone})
    if example == "php":
        return get_query(f"{base}/matrix", {**account, "phone": args.phone, "txt": args.txt})
    if example == "post":
        return post_form(f"{base}/matrix", {**account, "phone": args.phone, "txt": args.txt})
    if example == "carrier":
        return post_form(f"{base}/carrier", {**account, "phone": args.phone})
    if example == "balance":
        return post_form(f"{base}/balance", account)
    if example == "voice":
        fields = {**account, "phone": args.phone, "response": "1"}
        return post_multipart(f"{base}/matrix_voice", fields, "voicefile", Path(args.file))
    if example == "voiceurl":
        fields = {**account, "phone": args.phone, "voiceurl": args.voiceurl, "response": "0"}
        return post_form(f"{base}/matrix_voicew", fields)
    msg: list[str] = [*args.voiceurls, args.txt] if args.voiceurls else [args.txt]
    document = {**account, "phone": args.phone, "language": "us", "gender": "male", "response": 0, "msg": msg}
    return post_json(f"{base}/matrix_vtts", document)


EXAMPLES = (
    "sms",
    "group",
    "status",
    "tts",
    "rate",
    "php",
    "post",
    "carrier",
    "balance",
    "voice",
    "voiceurl",
    "vtts",
)


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("example", choices=EXAMPLES)
    parser.add_argument("--url", default=env("MATRIX_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--username", default=env("MATRIX_USERNAME", "user@hotmail.com"))
    parser.add_argument("--password", default=env("MATRIX_PASSWORD", "pass72727"))
    parser.add_argument("--phone", default=env("MATRIX_PHONE", "12506063167"), help="comma-separated list")
    parser.add_argument("--callerid", default=env("MATRIX_CALLERID", ""))
    parser.add_argument("--group", default=env("MATRIX_GROUP", "Test_Group"))
    parser.add_argument("--id", default=env("MATRIX_ID", ""), help="message ID for `status`")
    parser.add_argument("--txt", default=env("MATRIX_TXT", "This is a test, pls ignore"))
    parser.add_argument("--file", default=env("MATRIX_VOICEFILE", str(SAMPLE_WAV)))
    parser.add_argument("--voiceurl", default=env("MATRIX_VOICEURL", "http://www.myweb.de/s/welcome.mp3"))
    voiceurls = env("MATRIX_VOICEURLS", "").split()
    parser.add_argument("--voiceurls", nargs="*", default=voiceurls, help="vtts: voice URLs before the text")
    parser.add_argument("--check", action="store_true", help="exit 2 unless STATUSCODE is 0-399")
    tts = parser.add_argument_group("tts options (defaults: the seed's example)")
    tts.add_argument("--response", nargs="?", const="1", choices=("0", "1"),
                     default=env("MATRIX_RESPONSE", "0"),
                     help="1 (or the bare flag): ask the callee for a key; `status` then shows R = D")
    tts.add_argument("--repeat", default=env("MATRIX_REPEAT", "1"), help="extra plays of the message")
    tts.add_argument("--gender", choices=("male", "female"), default=env("MATRIX_GENDER", "male"))
    tts.add_argument("--language", choices=("us", "es"), default=env("MATRIX_LANGUAGE", "us"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    answer = run(args)
    print("Matrix API Response: " + answer + "\n")
    code = status_code(answer)
    if args.check and (code is None or not 0 <= code <= 399):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
