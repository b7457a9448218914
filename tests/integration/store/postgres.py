"""A throwaway PostgreSQL cluster for tests: initdb in a temp dir, started on a free 127.0.0.1 port,
stopped by its PID. PostgreSQL refuses to run as root, so as root the server runs as the `postgres`
system user (created when missing). IVRGATE_TEST_DATABASE_URL names an existing server instead.

Server binaries come from Debian's `postgresql` package (/usr/lib/postgresql/<major>/bin).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

ENV_URL = "IVRGATE_TEST_DATABASE_URL"
DEBIAN_PACKAGE = "postgresql"
SERVER_USER = "postgres"


def find_bin_dir() -> Path:
    """The directory holding initdb and postgres (newest major version first)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True
    )
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "postgres").exists():
            return directory
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise RuntimeError(
        f"PostgreSQL server binaries (initdb, postgres) not found: install the Debian package "
        f"'{DEBIAN_PACKAGE}' (apt-get install -y {DEBIAN_PACKAGE}) or set {ENV_URL}"
    )


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> tuple[int, int] | None:
    """(uid, gid) to run the server as, or None when we are not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVER_USER], check=True)
        entry = pwd.getpwnam(SERVER_USER)
    return entry.pw_uid, entry.pw_gid


def _demote(user: tuple[int, int] | None) -> dict[str, object]:
    if user is None:
        return {}
    return {"user": user[0], "group": user[1], "extra_groups": []}


class Cluster:
    """One running server; `url(dbname)` gives a SQLAlchemy URL for a database on it."""

    def __init__(self, base_url: str, process: subprocess.Popen[bytes] | None, root: Path | None) -> None:
        self.base_url = base_url
        self.process = process
        self.root = root

    def url(self, dbname: str) -> str:
        head, _, _ = self.base_url.rpartition("/")
        return f"{head}/{dbname}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            self.url("postgres").replace("postgresql+psycopg", "postgresql"), autocommit=True
        )

    def create_database(self, name: str, template: str | None = None) -> str:
        with self.admin() as conn:
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            conn.execute(statement)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"postgres exited with {process.returncode}: {log.read_text(errors='replace')}"
            )
        with contextlib.suppress(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2).close()
            return
        time.sleep(0.1)
    raise RuntimeError(f"postgres did not accept connections: {log.read_text(errors='replace')}")


def start_cluster(durable: bool = False) -> Cluster:
    """The server of IVRGATE_TEST_DATABASE_URL, or a fresh private cluster: for tests without fsync and
    with asynchronous commits (fast, and nothing to keep), or with PostgreSQL's durable defaults when
    `durable` (benchmarks: a commit waits for its WAL flush, as in production)."""
    external = os.environ.get(ENV_URL)
    if external:
        return Cluster(external.replace("postgresql://", "postgresql+psycopg://", 1), None, None)
    bin_dir = find_bin_dir()
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="ivrgate-pg-"))
    data, sockets, log = root / "data", root / "sock", root / "server.log"
    sockets.mkdir()
    if user is not None:
        for path in (root, sockets):
            os.chown(path, *user)
    subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "ivrgate",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C.UTF-8",
        ],
        check=True,
        capture_output=True,
        **_demote(user),  # type: ignore[call-overload]
    )
    port = free_tcp_port()
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-k",
                str(sockets),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=100",
                *([] if durable else ["-c", "fsync=off", "-c", "synchronous_commit=off",
                                      "-c", "full_page_writes=off"]),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **_demote(user),  # type: ignore[call-overload]
        )
    cluster = Cluster(f"postgresql+psycopg://ivrgate@127.0.0.1:{port}/postgres", process, root)
    try:
        _wait_ready(f"postgresql://ivrgate@127.0.0.1:{port}/postgres", process, log)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def running_cluster(durable: bool = False) -> Iterator[Cluster]:
    cluster = start_cluster(durable)
    try:
        yield cluster
    finally:
        cluster.stop()
