"""The issue's end-to-end demonstration: `ivrgate serve` with the built-in phone (or SIPp) as the trunk,
the seed's TTS example submitted over HTTP with curl and with the Python sample, matrix_status polled
to the final answer, and the balance lower by exactly the rated cost."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest

from tests.integration.e2e.conftest import (
    CREDIT,
    PASSWORD,
    ROOT,
    USERNAME,
    PhoneProcess,
    Server,
    Sipp,
    fields,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TTS_MINUTE = Decimal("0.0150")
"""samples/rates.csv: a TTS minute to +1 (North America)."""
PHONE = "12506063167"


def curl_tts(server: Server, response: int) -> dict[str, str]:
    """The seed's matrix_tts example (Perl LWP form POST) with curl; `response` as given."""
    cmd = ["curl", "--silent", "--show-error", "--fail", "--data-urlencode", f"username={USERNAME}",
           "--data-urlencode", f"password={PASSWORD}", "--data-urlencode", f"phone={PHONE}",
           "-d", "repeat=1", "-d", "gender=male", "-d", "language=us", "-d", f"response={response}",
           "--data-urlencode", "txt=Adam, web server is down", f"{server.url}/matrix_tts"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return fields(done.stdout)


def sample(server: Server, *args: str) -> dict[str, str]:
    """samples/clients/matrix.py against the server."""
    cmd = [sys.executable, str(ROOT / "samples" / "clients" / "matrix.py"), *args, "--url", server.url,
           "--username", USERNAME, "--password", PASSWORD, "--phone", PHONE]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (done.stdout, done.stderr)
    return fields(done.stdout.replace("Matrix API Response: ", ""))


def test_tts_call_answered_with_key_and_charged(
    serve: Callable[[int], Server], phone: Callable[..., PhoneProcess]
) -> None:
    far = phone("--press", "1", "--wait", "1", calls=2)
    server = serve(far.port)
    assert server.balance() == server.shown_balance() == Decimal(CREDIT)

    submitted = curl_tts(server, response=1)
    assert submitted["STATUSCODE"] == "200" and re.fullmatch(r"[0-9a-f]{32}", submitted["ID"]), submitted
    final = server.wait_final(submitted["ID"])
    assert re.fullmatch(r"Voice call answered, duration \d+ seconds\. R = 1", final["STATUSTXT"]), final
    assert final["STATUSCODE"] == "200" and final["RESPONSE"] == "1"
    # a call of a few seconds is one started minute at the TTS rate
    assert server.balance() == Decimal(CREDIT) - TTS_MINUTE
    assert server.shown_balance() == server.balance() == Decimal("9.985")  # shown as 9.9850, not 9.98

    # the Python sample: the seed's TTS example as written (response=0), then its status example
    by_sample = sample(server, "tts", "--txt", "Adam, web server is down")
    assert by_sample["STATUSCODE"] == "200", by_sample
    server.wait_final(by_sample["ID"])
    status = sample(server, "status", "--id", by_sample["ID"])
    assert re.fullmatch(r"Voice call answered, duration \d+ seconds\.", status["STATUSTXT"]), status
    assert server.balance() == Decimal(CREDIT) - 2 * TTS_MINUTE

    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'ivrgate_call_outcomes_total{code="200"} 2.0' in metrics
    assert server.stop() == 0
    calls = far.results(timeout=30)
    assert [c["answered"] for c in calls] == [True, True]
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    assert any(line["logger"] == "api.runtime.worker" for line in lines)  # structured logs


def test_busy_callee_releases_the_reservation(
    serve: Callable[[int], Server], sipp: Callable[..., Sipp]
) -> None:
    peer = sipp("uas_busy.xml")
    server = serve(peer.port)
    submitted = curl_tts(server, response=1)
    final = server.wait_final(submitted["ID"])
    assert (final["STATUSCODE"], final["STATUSTXT"], final["RESPONSE"]) == ("600", "Busy", "")
    assert server.balance() == Decimal(CREDIT)  # the reservation is released, nothing charged
    assert peer.wait(15) == 0, peer.errors()
    assert server.stop() == 0
