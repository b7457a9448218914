"""What a password-guessing client costs the gateway, before and during a lock of the login throttle.

    .venv/bin/python -m tests.bench.bench_login_throttle [--guesses 40]

One Gateway on a fresh SQLite store with argon2's production costs (store.accounts.DEFAULT_HASHER):
`--guesses` wrong passwords for one username are tried before the throttle locks (each an argon2 verify)
and the same number during the lock (each refused before argon2); prints guesses per second and CPU
milliseconds per guess for both, and how many argon2 verifies ran.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import tempfile
import time
from pathlib import Path

from api.core.service import Gateway
from api.core.settings import Settings
from api.core.throttle import ThrottleSettings
from store import accounts
from store.db import Database
from store.errors import WrongCredentials


def _run(gateway: Gateway, guesses: int) -> tuple[float, float]:
    """(guesses per second, CPU ms per guess) of `guesses` wrong logins."""
    wall, cpu = time.perf_counter(), time.process_time()
    for n in range(guesses):
        with contextlib.suppress(WrongCredentials):  # and LoginThrottled, its subclass: both the point
            gateway.login("victim@example.com", f"guess-{n}", source="192.0.2.9")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return guesses / wall, cpu * 1000 / guesses


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--guesses", type=int, default=40)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
        db.upgrade()
        now = dt.datetime.now(dt.UTC)
        with db.transaction() as session:
            accounts.create_account(session, username="victim@example.com", password="the-right-one", now=now)
        free = args.guesses + 1  # no lock while measuring the unthrottled cost
        open_gateway = Gateway(Settings(data_dir=Path(tmp), login_throttle=ThrottleSettings(
            user_free_failures=free, address_free_failures=free)), db)
        rate, cpu = _run(open_gateway, args.guesses)
        print(f"before a lock: {rate:8.1f} guesses/s, {cpu:7.2f} ms CPU each, "
              f"{open_gateway.credentials.argon2_runs} argon2 verifies")
        open_gateway.close()
        locking = Gateway(Settings(data_dir=Path(tmp), login_throttle=ThrottleSettings(
            user_free_failures=1, max_lock_s=3600, first_lock_s=3600)), db)
        _run(locking, 1)  # the lock
        runs = locking.credentials.argon2_runs
        rate, cpu = _run(locking, args.guesses)
        print(f"during a lock: {rate:8.1f} guesses/s, {cpu:7.2f} ms CPU each, "
              f"{locking.credentials.argon2_runs - runs} argon2 verifies")
        locking.close()
        db.dispose()


if __name__ == "__main__":
    main()
