"""`ivrgate user`, `ivrgate rates` and `ivrgate serve` start-up: accounts and rates written through the
CLI and read back from the store, clear refusals, and HTTPS with a certificate (curl checks it)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from api.cli.main import main
from store import accounts, ledger, rating
from store.db import Database, resolve_url
from store.models import Role
from tests.integration.e2e.conftest import ROOT, Server, clean_env, free_tcp_port

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def no_ivrgate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("IVRGATE_")]:
        monkeypatch.delenv(name)


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def ivrgate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*args: str) -> tuple[int, str, str]:
        status = main(["--data", str(tmp_path / "data"), *args])
        out, err = capsys.readouterr()
        return status, out, err
    return run


def store_of(tmp_path: Path) -> Database:
    return Database.open(resolve_url("", tmp_path / "data"))


def test_user_add_list_credit(ivrgate: Run, tmp_path: Path) -> None:
    assert ivrgate("user", "add", "User888@Yahoo.ca", "--password", "pass7782", "--credit", "10.25")[0] == 0
    assert ivrgate("user", "add", "ops@example.com", "--password", "pw", "--admin")[0] == 0
    status, out, _ = ivrgate("user", "add", "clerk@example.com", "--password", "pw", "--parent",
                             "user888@yahoo.ca", "--limit", "5")
    assert status == 0 and "subuser active of user888@yahoo.ca limit 5.0000" in out
    assert ivrgate("user", "credit", "user888@yahoo.ca", "0.000001")[0] == 0
    status, out, _ = ivrgate("user", "list")
    assert out.splitlines() == ["user888@yahoo.ca owner active balance 10.250001 USD",
                                "ops@example.com administrator active balance 0.0000 USD",
                                "clerk@example.com subuser active of user888@yahoo.ca limit 5.0000"]
    db = store_of(tmp_path)
    try:
        with db.read() as s:
            owner = accounts.find_account(s, "user888@yahoo.ca")
            assert owner is not None and PasswordHasher().verify(owner.password_hash, "pass7782")
            assert ledger.balance(s, owner.id) == 10_250_001
            clerk = accounts.find_account(s, "clerk@example.com")
            assert clerk is not None and clerk.role == Role.SUBUSER and clerk.spending_limit == 5_000_000
    finally:
        db.dispose()


def test_user_refusals(ivrgate: Run) -> None:
    assert ivrgate("user", "add", "a@example.com", "--password", "pw")[0] == 0
    status, _, err = ivrgate("user", "add", "A@example.com", "--password", "other")
    assert status == 1 and "ERROR: ALREADY EXISTS" in err
    status, _, err = ivrgate("user", "add", "not-an-email", "--password", "pw")
    assert status == 1 and "INVALID USERNAME" in err
    status, _, err = ivrgate("user", "add", "b@example.com", "--password", "pw", "--parent", "nobody@x.org")
    assert status == 1 and "ACCOUNT OR USER DOES NOT EXIST" in err
    status, _, err = ivrgate("user", "add", "c@example.com", "--password", "pw", "--parent", "a@example.com",
                             "--credit", "1")
    assert status == 2 and "sub-user" in err
    with pytest.raises(SystemExit):
        ivrgate("user", "add", "d@example.com", "--password", "pw", "--credit", "-1")


def test_password_from_stdin(ivrgate: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("from stdin\n"))
    assert ivrgate("user", "add", "e@example.com")[0] == 0
    db = store_of(tmp_path)
    try:
        with db.read() as s:
            added = accounts.find_account(s, "e@example.com")
            assert added is not None and PasswordHasher().verify(added.password_hash, "from stdin")
    finally:
        db.dispose()


def test_rates_import_replace_and_list(ivrgate: Run, tmp_path: Path) -> None:
    status, out, _ = ivrgate("rates", "import", str(ROOT / "samples" / "rates.csv"))
    assert status == 0 and out.startswith("imported 5 rates")
    small = tmp_path / "small.csv"
    small.write_text('prefix,sms,voice,tts,description\n1,0.01,0.02,0.03,"North America, NANP"\n')
    assert ivrgate("rates", "import", str(small), "--replace")[0] == 0
    status, out, _ = ivrgate("rates", "list")
    assert out.splitlines() == ["prefix,sms,voice,tts,currency,description",
                                '1,0.0100,0.0200,0.0300,USD,"North America, NANP"']
    db = store_of(tmp_path)
    try:
        with db.read() as s:
            assert rating.price_for(s, "+12506063167", "tts") == (30_000, "USD")
    finally:
        db.dispose()


def test_bad_rates_file_changes_nothing(ivrgate: Run, tmp_path: Path) -> None:
    assert ivrgate("rates", "import", str(ROOT / "samples" / "rates.csv"))[0] == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("prefix,sms\n1,0.01\n44,cheap\n")
    status, _, err = ivrgate("rates", "import", str(bad), "--replace")
    assert status == 1 and "ERROR: INVALID RATES FILE" in err and "line 3" in err
    assert len(ivrgate("rates", "list")[1].splitlines()) == 6


def test_serve_refuses_unusable_settings(
    ivrgate: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _, err = ivrgate("serve")
    assert status == 1 and "trunk host" in err and "IVRGATE_SIP__TRUNK_HOST" in err
    status, _, err = ivrgate("serve", "--no-worker", "--certfile", str(tmp_path / "none.pem"), "--keyfile",
                             str(tmp_path / "none.key"))
    assert status == 1 and "no such file" in err
    status, _, err = ivrgate("serve", "--no-worker", "--certfile", str(tmp_path / "none.pem"))
    assert status == 1 and "both certfile and keyfile" in err
    monkeypatch.setenv("IVRGATE_SERVER__LOG_FORMAT", "xml")
    status, _, err = ivrgate("serve", "--no-worker")
    assert status == 2 and "server: Value error, log_format must be text or json" in err


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_serve_https_with_a_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out",
                    str(cert)], check=True, capture_output=True, timeout=60)
    port = free_tcp_port()
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "api", "--data", str(tmp_path / "data"), "serve",
                                 "--no-worker", "--port", str(port), "--certfile", str(cert), "--keyfile",
                                 str(key)], cwd=ROOT, env=clean_env(), stdout=sink, stderr=subprocess.STDOUT,
                                text=True)
    server = Server(proc, f"https://127.0.0.1:{port}", tmp_path / "data", log)
    try:
        probe = ["curl", "--silent", "--fail", "--cacert", str(cert), f"{server.url}/healthz"]
        for _ in range(300):
            done = subprocess.run(probe, capture_output=True, text=True, timeout=10)
            if done.returncode == 0 or proc.poll() is not None:
                break
            time.sleep(0.1)
        healthy = '{"status":"ok","database":"ok","sms":{"configured":false}}'
        assert done.stdout == healthy, (done, log.read_text())
        plain = subprocess.run(["curl", "--silent", f"http://127.0.0.1:{port}/healthz"], capture_output=True,
                               timeout=10)
        assert plain.returncode != 0 or b"ok" not in plain.stdout  # no plain HTTP on the HTTPS port
        assert server.stop() == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
