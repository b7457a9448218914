"""End-to-end SMS figure: from the legacy `matrix` HTTP call to the SMSC, messages per second.

    .venv/bin/python -m tests.bench.bench_sms_gateway [--messages 2000] [--per-call 100]

The app runs as `ivrgate serve` runs it (its SMS node started by the lifespan) on a SQLite store,
behind a TestClient; the node SMSC (tests/peers/smsc.js) answers and sends a receipt per part. The
clock starts before the first `matrix` call and stops when the SMSC has accepted every message; a
second figure waits until every message reads Delivered in the store. (The engineer owning
tests/bench/bench_smpp.py may call `bench_end_to_end()` from its main.)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings, SmsSettings
from store.models import Message
from tests.integration.sms.conftest import settings_for
from tests.integration.sms.peer import Smsc
from tests.integration.sms_gateway.conftest import PASSWORD, USER, seed


def bench_end_to_end(messages: int = 2000, per_call: int = 100) -> dict[str, float]:
    """Submit `messages` SMS through `matrix` (`per_call` recipients a call); the rates it reached."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        smsc = Smsc(data / "accepted.jsonl", nodelay=True)
        smsc.start()
        try:
            seed(data, "")
            settings = Settings(data_dir=data, sms=settings_for(smsc, window=64),
                                sms_service=SmsSettings(poll_interval_s=0.1, batch=256, max_in_flight=1024))
            app = create_app(settings)
            with TestClient(app) as client:
                phones = [f"+1250{n:07d}" for n in range(messages)]
                start = time.perf_counter()
                for first in range(0, messages, per_call):
                    params = {"username": USER, "password": PASSWORD, "txt": "Bench message",
                              "phone": ",".join(phones[first:first + per_call])}
                    assert client.get("/matrix", params=params).status_code == 200
                submitted = time.perf_counter()
                while smsc.state()["stats"]["accepted"] < messages:
                    time.sleep(0.01)
                at_smsc = time.perf_counter()
                db = app.state.gateway.db
                while True:
                    with db.read() as session:
                        done = session.query(Message).filter(Message.status_code == 200).count()
                    if done >= messages:
                        break
                    time.sleep(0.05)
                all_delivered = time.perf_counter()
        finally:
            smsc.stop()
    return {"messages": messages, "per_call": per_call,
            "http_submit_per_s": messages / (submitted - start),
            "to_smsc_per_s": messages / (at_smsc - start),
            "to_delivered_per_s": messages / (all_delivered - start)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--per-call", type=int, default=100)
    args = parser.parse_args(argv)
    for per_call in sorted({1, args.per_call}):
        count = min(args.messages, 300) if per_call == 1 else args.messages
        figures = bench_end_to_end(count, per_call)
        print(f"matrix -> SMSC, {figures['messages']:.0f} SMS, {per_call} recipient(s) per call: "
              f"HTTP submit {figures['http_submit_per_s']:.0f}/s, "
              f"at the SMSC {figures['to_smsc_per_s']:.0f}/s, "
              f"Delivered in the store {figures['to_delivered_per_s']:.0f}/s")


if __name__ == "__main__":
    main()
