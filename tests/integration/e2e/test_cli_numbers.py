"""`ivrgate number`: virtual numbers written through the CLI, read back from the store and by the inbound
path's lookup; the same refusals as /v1/numbers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from api.cli.main import main
from store import lists
from store.db import Database, resolve_url
from tests.integration.e2e.conftest import ROOT, clean_env

pytestmark = pytest.mark.integration

Run = Callable[..., tuple[int, str, str]]
HOOK = "https://crm.example.com/sms/in"


@pytest.fixture(autouse=True)
def no_ivrgate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("IVRGATE_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def ivrgate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*args: str) -> tuple[int, str, str]:
        status = main(["--data", str(tmp_path / "data"), *args])
        out, err = capsys.readouterr()
        return status, out, err
    return run


@pytest.fixture
def accounts(ivrgate: Run) -> None:
    for args in (("owner@example.com",), ("other@example.com",), ("ops@example.com", "--admin"),
                 ("clerk@example.com", "--parent", "owner@example.com")):
        assert ivrgate("user", "add", *args, "--password", "pw")[0] == 0


def webhook_of(tmp_path: Path, number: str) -> tuple[str, int] | None:
    db = Database.open(resolve_url("", tmp_path / "data"))
    try:
        with db.read() as session:
            row = lists.virtual_number(session, number)
            return None if row is None else (row.webhook_url, row.account_id)
    finally:
        db.dispose()


@pytest.mark.usefixtures("accounts")
def test_number_add_change_list_remove(ivrgate: Run, tmp_path: Path) -> None:
    status, out, err = ivrgate("number", "add", "(250) 555-0100", "--owner", "owner@example.com",
                               "--webhook", HOOK)
    assert (status, out, err) == (0, f"added +12505550100 owner@example.com {HOOK}\n", "")
    assert ivrgate("number", "add", "+16045550111", "--owner", "other@example.com", "--webhook",
                   "http://10.1.2.3/in")[0] == 0
    status, out, _ = ivrgate("number", "list")
    assert out.splitlines() == [f"+12505550100 owner@example.com {HOOK}",
                                "+16045550111 other@example.com http://10.1.2.3/in"]
    status, out, _ = ivrgate("number", "list", "--owner", "other@example.com")
    assert out.splitlines() == ["+16045550111 other@example.com http://10.1.2.3/in"]
    status, out, _ = ivrgate("number", "change", "2505550100", "--webhook", "https://crm.example.com/v2")
    assert (status, out) == (0, "changed +12505550100 owner@example.com https://crm.example.com/v2\n")
    hook = webhook_of(tmp_path, "+12505550100")
    assert hook is not None and hook[0] == "https://crm.example.com/v2"
    assert ivrgate("number", "remove", "+1 250 555 0100") == (0, "removed +12505550100\n", "")
    assert webhook_of(tmp_path, "+12505550100") is None
    assert ivrgate("number", "list")[1].splitlines() == ["+16045550111 other@example.com http://10.1.2.3/in"]


@pytest.mark.usefixtures("accounts")
def test_number_refusals(ivrgate: Run, tmp_path: Path) -> None:
    add = ("number", "add", "+12505550100", "--webhook", HOOK, "--owner")
    assert ivrgate(*add, "owner@example.com")[0] == 0
    status, _, err = ivrgate(*add, "other@example.com")
    assert status == 1 and "ERROR: ALREADY EXISTS" in err and "+12505550100 is already assigned" in err
    for who in ("clerk@example.com", "ops@example.com"):
        status, _, err = ivrgate("number", "add", "+12505550101", "--webhook", HOOK, "--owner", who)
        assert status == 1 and "ERROR: FORBIDDEN" in err, who
    status, _, err = ivrgate("number", "add", "+12505550101", "--webhook", HOOK, "--owner", "nobody@x.org")
    assert status == 1 and "ACCOUNT OR USER DOES NOT EXIST" in err
    status, _, err = ivrgate("number", "add", "call me", "--webhook", HOOK, "--owner", "owner@example.com")
    assert status == 1 and "INVALID PIN" in err
    status, _, err = ivrgate("number", "change", "+12505550100", "--webhook", "ftp://x.example/in")
    assert status == 1 and "ERROR: INVALID WEBHOOK_URL" in err
    status, _, err = ivrgate("number", "remove", "+12505550199")
    assert status == 1 and "ERROR: NOT FOUND: +12505550199 is not assigned" in err
    assert webhook_of(tmp_path, "+12505550100") == (HOOK, 1)
    assert webhook_of(tmp_path, "+12505550101") is None


def test_the_installed_command(tmp_path: Path) -> None:
    """The `ivrgate` entry point as installed, in a fresh data directory."""
    exe = Path(sys.executable).parent / "ivrgate"  # the environment's entry point (pip install -e .)
    assert exe.is_file(), f"{exe} is missing: install the project (scripts/bootstrap.sh)"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(exe), "--data", str(tmp_path / "data"), *args], cwd=ROOT, env=clean_env(),
                              capture_output=True, text=True, timeout=60)

    assert run("user", "add", "o@example.com", "--password", "pw").returncode == 0
    add = ("number", "add", "2505550100", "--owner", "o@example.com", "--webhook", HOOK)
    added = run(*add)
    assert (added.returncode, added.stdout) == (0, f"added +12505550100 o@example.com {HOOK}\n"), added.stderr
    refused = run(*add)
    assert refused.returncode == 1 and "ERROR: ALREADY EXISTS" in refused.stderr
