"""Legacy handlers on the event loop: anything that would block the loop (argon2 on a credential cache
miss, a PostgreSQL read, the SQLite writer held by a thread) raises NeedsThread before a row is written,
and the HTTP route then answers from the thread pool exactly as before."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from fastapi.testclient import TestClient

from api.core.service import Gateway, NeedsThread, inline
from store.db import Database
from tests.integration.api.conftest import PASSWORD, World, account, counts, one

pytestmark = pytest.mark.integration

TTS = {"phone": "12506063167", "txt": "Adam, web server is down"}


def test_a_cache_miss_never_runs_argon2_inline(gateway: Gateway, world: World) -> None:
    with inline(), pytest.raises(NeedsThread):
        gateway.login(world.owner.username, PASSWORD)
    assert len(gateway.credentials) == 0  # refused before argon2 ran: nothing learnt
    gateway.login(world.owner.username, PASSWORD, rechecked=True)  # off the loop: argon2, then cached
    runs = gateway.credentials.argon2_runs
    with inline():  # a submission's login: the account row read lately, the pair cached
        caller = gateway.login(world.owner.username, PASSWORD, rechecked=True)
    assert caller.user_id == world.owner.id and gateway.credentials.argon2_runs == runs


def test_a_query_login_reads_the_row_and_postgresql_reads_leave_the_loop(
    gateway: Gateway, db: Database, world: World
) -> None:
    gateway.login(world.owner.username, PASSWORD, rechecked=True)
    if db.dialect == "sqlite":
        with inline():
            assert gateway.login(world.owner.username, PASSWORD).user_id == world.owner.id
    else:
        with inline(), pytest.raises(NeedsThread):
            gateway.login(world.owner.username, PASSWORD)


def test_a_held_writer_lock_moves_the_submission_before_anything_is_written(
    gateway: Gateway, db: Database, world: World
) -> None:
    if db.dialect != "sqlite":
        pytest.skip("the in-process writer lock exists for SQLite only")
    caller = gateway.login(world.owner.username, PASSWORD)
    before = counts(db)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gateway._write():
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        held.wait(10)
        with inline(), pytest.raises(NeedsThread):
            gateway.submit_tts(caller, phones=TTS["phone"], text=TTS["txt"])
    finally:
        release.set()
        holder.join(10)
    assert counts(db) == before
    with inline():
        (queued,) = gateway.submit_tts(caller, phones=TTS["phone"], text=TTS["txt"])
    assert queued.code == 100


def test_http_answers_are_the_same_on_a_cache_miss_and_a_hit(
    client: TestClient, gateway: Gateway, world: World
) -> None:
    answers = [one(client.post("/matrix_tts", data=account(**TTS)).text) for _ in range(2)]
    assert [a["STATUSCODE"] for a in answers] == ["200", "200"]
    assert answers[0]["ID"] != answers[1]["ID"]
    assert len(gateway.credentials) == 1  # the miss verified in the thread pool, the hit inline
    wrong = one(client.post("/matrix_tts", data=account(password="wrong-pass", **TTS)).text)
    assert wrong["STATUSCODE"] == "505"


def test_another_process_holding_the_writer_queues_this_ones_writes(
    gateway: Gateway, db: Database, world: World
) -> None:
    """Two gateway processes on one SQLite file take turns through an flock on `<file>.writer`: the
    event loop is never blocked on it (NeedsThread), a thread waits for it without sqlite3's sleeps."""
    if db.dialect != "sqlite":
        pytest.skip("the cross-process writer lock exists for SQLite only")
    caller = gateway.login(world.owner.username, PASSWORD)
    lock_path = f"{db.url.database}.writer"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FLOCK, lock_path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        before = counts(db)
        with inline(), pytest.raises(NeedsThread, match="another process"):
            gateway.submit_tts(caller, phones=TTS["phone"], text=TTS["txt"])
        assert counts(db) == before
        done = threading.Event()
        results: list[object] = []

        def submit() -> None:
            results.extend(gateway.submit_tts(caller, phones=TTS["phone"], text=TTS["txt"]))
            done.set()

        writer = threading.Thread(target=submit)
        writer.start()
        assert not done.wait(0.5)  # queued behind the other process
        assert holder.stdin is not None
        holder.stdin.write("release\n")
        holder.stdin.flush()
        assert done.wait(10)
        writer.join(10)
        assert [getattr(r, "code", None) for r in results] == [100]
    finally:
        holder.kill()
        holder.wait(10)


HOLD_FLOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
fcntl.flock(fd, fcntl.LOCK_UN)
"""
