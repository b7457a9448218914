"""Legacy matrix_tts submissions per second and latency against a real server, SQLite and PostgreSQL.

    .venv/bin/python -m tests.bench.bench_api [--seconds 10] [--connections 16] [--backend sqlite|both]
                                              [--workers 1] [--accounts 1] [--loop serve|auto|asyncio|uvloop]
                                              [--pg-no-fsync]

`ivrgate serve --no-worker --http-processes <workers>` (or, with another `--loop`, uvicorn's own command
with `--workers`) on 127.0.0.1 serves a seeded store (logs at WARNING; PostgreSQL with its durable
defaults unless --pg-no-fsync); the load comes from wrk (Debian package `wrk`) when installed, else from
an httpx/asyncio generator. Every request is a new submission; with `--accounts 1` all by the same
account (one owner row lock serialises them on PostgreSQL, by design), with more accounts each request
picks one at random.
After the first argon2 verify of each account the credential cache answers (per process).
Prints requests/s, p50/p99 latency, the server's CPU time per request (user + system of its processes, and
of PostgreSQL's, from /proc: steadier than requests/s on a shared machine), how many messages the store holds
afterwards (all must be queued) and the group commit's mean batch size.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from argon2 import PasswordHasher
from sqlalchemy import func, select

from store.db import Database
from store.models import Message
from tests.integration.api.conftest import seed
from tests.integration.store.postgres import free_tcp_port, running_cluster
from tests.procfs import tcp_listening, tree_cpu_seconds

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pass72727"
FORM = "username={user}&password=" + PASSWORD + "&phone=12506063167&txt=Adam%2C+web+server+is+down"
BODY = FORM.format(user="user%40hotmail.com")
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local bodies = {{{bodies}}}
request = function()
  return wrk.format(nil, nil, nil, bodies[math.random(#bodies)])
end
"""


def usernames(count: int) -> list[str]:
    """The seeded owner, then `count - 1` more bench accounts."""
    return ["user@hotmail.com", *(f"bench{n}@example.com" for n in range(1, count))]


def bodies(count: int) -> list[str]:
    return [FORM.format(user=name.replace("@", "%40")) for name in usernames(count)]


@contextlib.contextmanager
def server(url: str, data: Path, workers: int = 1, loop: str = "auto") -> Iterator[tuple[str, int]]:
    """The server on a free port of 127.0.0.1, serving the store at `url`: (base URL, server PID).
    `loop` "serve" runs `ivrgate serve --no-worker --http-processes <workers>` (what a user runs:
    asyncio, SO_REUSEPORT sockets); any other value runs uvicorn's own command with `--workers` and that
    `--loop` (auto: uvloop when installed)."""
    port = free_tcp_port()
    log = data / "server.log"
    env = {**os.environ, "IVRGATE_DATA_DIR": str(data), "IVRGATE_DATABASE_URL": url,
           "IVRGATE_SERVER__LOG_FORMAT": "json", "IVRGATE_SERVER__LOG_LEVEL": "WARNING",
           "IVRGATE_SMTP__ENABLED": "false"}
    if loop == "serve":
        command = ["-m", "api", "serve", "--port", str(port), "--no-worker", "--http-processes", str(workers)]
    else:
        command = ["-m", "uvicorn", "--factory", "api.fronts.app:app_from_env", "--host", "127.0.0.1",
                   "--port", str(port), "--log-level", "warning", "--no-access-log",
                   "--workers", str(workers), "--loop", loop]
    with log.open("w") as sink:
        process = subprocess.Popen([sys.executable, *command], env=env, cwd=ROOT, stdout=sink,
                                   stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _ready(base, port, workers if loop == "serve" else 1):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(30)


def _ready(base: str, port: int, listeners: int) -> bool:
    """Whether the server answers and `listeners` sockets listen on `port` (with `serve`, each HTTP
    process binds its own SO_REUSEPORT socket, and connections made before it does all go to the
    others)."""
    try:
        httpx.get(f"{base}/sms_rate", params={"phone": "12506058145"}, timeout=1)
    except httpx.TransportError:
        return False
    return tcp_listening(port) >= listeners


def prepare(url: str, count: int = 1) -> None:
    """Migrate and seed the store; `count` owners with plenty of money."""
    from store import accounts, ledger
    from tests.integration.api.conftest import NOW

    hasher = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    database = Database.open(url)
    database.upgrade()
    seed(database, hasher)
    with database.transaction() as s:
        for name in usernames(count):
            owner = accounts.find_account(s, name)
            if owner is None:
                owner = accounts.create_account(s, username=name, password=PASSWORD, now=NOW, hasher=hasher)
            ledger.top_up(s, owner.id, 10**15, NOW)
    database.dispose()


def jobs_per_write(metrics: str) -> float:
    """The group commit's mean batch size, from one process's /metrics."""
    found = dict(re.findall(r"^ivrgate_submission_(writes|jobs)_total (\S+)$", metrics, re.MULTILINE))
    writes = float(found.get("writes", 0))
    return float(found.get("jobs", 0)) / writes if writes else 0.0


def queued(url: str) -> int:
    database = Database.open(url)
    with database.read() as s:
        count = int(
            s.scalar(select(func.count()).select_from(Message).where(Message.status_code == 100)) or 0
        )
    database.dispose()
    return count


def run_wrk(base: str, seconds: int, connections: int, count: int = 1) -> tuple[float, str, str, int]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA.format(bodies=", ".join(f'"{body}"' for body in bodies(count))))
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            script.name,
            f"{base}/matrix_tts",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = out.partition("Latency Distribution")[2]
    p50 = re.search(r"50%\s+(\S+)", latency).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+(\S+)", latency).group(1)  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rate, p50, p99, total


async def _load(base: str, seconds: int, connections: int, count: int = 1) -> tuple[float, str, str, int]:
    latencies: list[float] = []
    failures = 0  # here: accepted submissions
    stop = time.monotonic() + seconds
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    choices = bodies(count)
    async with httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=connections)) as client:

        async def user() -> None:
            nonlocal failures
            while time.monotonic() < stop:
                started = time.perf_counter()
                body = random.choice(choices)
                answer = await client.post("/matrix_tts", content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                failures += "STATUSCODE: 200" in answer.text

        begin = time.monotonic()
        await asyncio.gather(*(user() for _ in range(connections)))
        elapsed = time.monotonic() - begin
    latencies.sort()

    def pick(q: float) -> str:
        return f"{latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000:.2f}ms"

    return len(latencies) / elapsed, pick(0.5), pick(0.99), failures


def measure(name: str, url: str, args: argparse.Namespace, db_pid: int | None = None) -> None:
    """One run against the store at `url`; `db_pid`: the database server, whose CPU is printed too."""
    prepare(url, args.accounts)
    with tempfile.TemporaryDirectory() as data, \
            server(url, Path(data), args.workers, args.loop) as (base, pid):
        warm = [*bodies(args.accounts)] * (4 * args.workers)  # argon2 once per account and process
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        for body in warm:
            httpx.post(f"{base}/matrix_tts", content=body, headers=form)
        cpu_before = tree_cpu_seconds(pid)
        db_before = tree_cpu_seconds(db_pid) if db_pid else 0.0
        if shutil.which("wrk") and not args.httpx:
            tool = "wrk"
            rate, p50, p99, sent = run_wrk(base, args.seconds, args.connections, args.accounts)
        else:
            tool = "httpx"
            rate, p50, p99, sent = asyncio.run(_load(base, args.seconds, args.connections, args.accounts))
        cpu_ms = (tree_cpu_seconds(pid) - cpu_before) * 1000 / max(sent, 1)
        db_ms = (tree_cpu_seconds(db_pid) - db_before) * 1000 / max(sent, 1) if db_pid else 0.0
        batch = jobs_per_write(httpx.get(f"{base}/metrics").text)
    stored = queued(url) - len(warm)
    print(
        f"{name:10s} {tool:5s} workers {args.workers} accounts {args.accounts:3d} {rate:8.0f} submissions/s"
        f"  p50 {p50:>9s}  p99 {p99:>9s}  server CPU {cpu_ms:.2f} ms/request"
        + (f" + database {db_ms:.2f} ms" if db_pid else "")
        + f"  requests {sent}, queued in the store {stored}, {batch:.1f} jobs per write (one process)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--httpx", action="store_true", help="use the httpx generator even if wrk exists")
    parser.add_argument("--workers", type=int, default=1, help="HTTP processes")
    parser.add_argument("--pg-no-fsync", action="store_true",
                        help="PostgreSQL with the tests' settings (fsync off, asynchronous commit), "
                             "not its durable defaults")
    parser.add_argument("--accounts", type=int, default=1, help="accounts the submissions are spread over")
    parser.add_argument("--loop", choices=("serve", "auto", "asyncio", "uvloop"), default="serve",
                        help="serve: `ivrgate serve --http-processes <workers>` (default); else uvicorn's "
                             "own command with this event loop (auto: uvloop when installed)")
    args = parser.parse_args(argv)
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            measure("sqlite", f"sqlite:///{tmp}/bench.db", args)
    if args.backend in ("postgresql", "both"):
        with running_cluster(durable=not args.pg_no_fsync) as cluster:
            server_pid = cluster.process.pid if cluster.process is not None else None
            measure("postgresql", cluster.create_database("ivrgate_bench"), args, server_pid)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
