"""A voice worker node in a process of its own (engine pool + VoiceWorker on SQLite), configured by
IVRGATE_... environment variables, for tests that SIGKILL it:

    IVRGATE_DATA_DIR=/tmp/x IVRGATE_SIP__TRUNK_HOST=127.0.0.1:5070 \
        python -m tests.integration.worker.worker_proc

Prints `worker ready <pid>` once the engines are up; SIGTERM stops it gracefully (exit status 0).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from api.settings import load_settings
from api.worker import running_worker
from store.db import Database, resolve_url


async def serve() -> None:
    settings = load_settings()
    db = Database.open(resolve_url(settings.store.database_url, settings.data_dir))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        async with running_worker(settings, db):
            print(f"worker ready {os.getpid()}", flush=True)
            await stop.wait()
    finally:
        db.dispose()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
