"""Pure parts of the callback sender: signatures, per-account secrets, the master key file, settings,
destinations and the concurrency limits."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.core.signing import KEY_FILE, CallbackSecrets, CallbackSettings, account_ref, sign, verify
from api.runtime.callbacks import Slots
from store import outbox

BODY = b'{"ID": "0123456789abcdef0123456789abcdef", "STATUSCODE": 200}'


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    expected = hmac.new(b"secret", BODY, hashlib.sha256).hexdigest()
    assert sign("secret", BODY) == f"sha256={expected}"


def test_verify_accepts_only_the_same_body_and_secret() -> None:
    header = sign("secret", BODY)
    assert verify("secret", BODY, header)
    assert verify("secret", BODY, f" {header}\n")
    assert not verify("secret", BODY.replace(b"200", b"201"), header)
    assert not verify("other", BODY, header)
    assert not verify("secret", BODY, header.replace("sha256=", "sha1="))
    assert not verify("secret", BODY, "")


def test_secrets_are_derived_per_account_and_stable() -> None:
    secrets = CallbackSecrets(b"m" * 32)
    assert secrets.for_account(12) == CallbackSecrets(b"m" * 32).for_account(12)
    assert secrets.for_account(12) == secrets.for_ref(account_ref(12)) == secrets.for_ref("account:12")
    assert secrets.for_account(12) != secrets.for_account(13)
    assert secrets.for_account(12) != CallbackSecrets(b"n" * 32).for_account(12)
    assert len(secrets.for_account(12)) == 64 and int(secrets.for_account(12), 16) >= 0


def test_a_short_master_key_is_refused() -> None:
    with pytest.raises(ValueError):
        CallbackSecrets(b"short")
    with pytest.raises(ValueError):
        CallbackSettings(secret="short")


def test_the_master_key_comes_from_the_setting_when_given(tmp_path: Path) -> None:
    settings = CallbackSettings(secret="s" * 40)
    loaded = CallbackSecrets.load(settings, tmp_path)
    assert loaded.for_account(1) == CallbackSecrets(b"s" * 40).for_account(1)
    assert not (tmp_path / KEY_FILE).exists()


def test_without_a_setting_a_private_key_file_is_created_once(tmp_path: Path) -> None:
    first = CallbackSecrets.load(CallbackSettings(), tmp_path / "data")
    path = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = CallbackSecrets.load(CallbackSettings(), tmp_path / "data")
    assert first.for_account(5) == again.for_account(5)
    other = CallbackSecrets.load(CallbackSettings(), tmp_path / "elsewhere")
    assert other.for_account(5) != first.for_account(5)


def test_a_truncated_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("abc\n")
    with pytest.raises(ValueError, match="shorter"):
        CallbackSecrets.load(CallbackSettings(), tmp_path)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"total_timeout_s": 0},
        {"connect_timeout_s": -1},
        {"max_attempts": 0},
        {"batch": 0},
        {"poll_interval_s": 0},
        {"max_concurrent": 0},
        {"max_per_destination": 0},
    ],
)
def test_settings_refuse_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CallbackSettings(**kwargs)  # type: ignore[arg-type]


# --- concurrency limits (pure) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "dest"),
    [
        ("https://Hooks.Example:8443/a/b?c#d", "https://hooks.example:8443"),
        ("http://h.example?x=1", "http://h.example"),
        ("http://h.example#f", "http://h.example"),
        (" http://h.example ", "http://h.example"),
        ("not a url", "not a url"),
    ],
)
def test_destination_is_scheme_host_and_port(url: str, dest: str) -> None:
    assert outbox.destination(url) == dest


def test_slots_keep_both_limits() -> None:
    slots = Slots(total=3, per_destination=2)
    assert slots.take("a") and slots.take("a") and not slots.take("a")
    assert slots.busy() == {"a"} and slots.free == 1
    assert slots.take("b") and not slots.take("c") and slots.free == 0
    slots.give_back("a")
    assert slots.busy() == frozenset() and slots.take("c") and slots.in_flight == 3


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # a busy CI machine
@given(st.lists(st.tuples(st.booleans(), st.sampled_from("abcd")), max_size=200),
       st.integers(1, 6), st.integers(1, 3))
def test_slots_never_pass_a_limit(steps: list[tuple[bool, str]], total: int, per_destination: int) -> None:
    slots = Slots(total, per_destination)
    held: list[str] = []
    for start, dest in steps:
        if start:
            allowed = len(held) < total and held.count(dest) < per_destination
            assert slots.take(dest) == allowed
            held += [dest] if allowed else []
        elif dest in held:
            held.remove(dest)
            slots.give_back(dest)
        assert slots.in_flight == len(held) <= total
        assert slots.busy() == {d for d in held if held.count(d) >= per_destination}
