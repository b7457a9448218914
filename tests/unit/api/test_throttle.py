"""The login throttle's pure rules: the back-off, and the keys a login counts against."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.core.throttle import ThrottleSettings, address_key, lock_seconds, user_key

SETTINGS = ThrottleSettings(first_lock_s=1.0, max_lock_s=900.0)


def test_free_failures_then_doubling_locks_up_to_the_cap() -> None:
    locks = [lock_seconds(n, 5, SETTINGS) for n in range(1, 18)]
    assert locks[:4] == [0.0] * 4
    assert locks[4:14] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert locks[14:] == [900.0, 900.0, 900.0]


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=100))
def test_locks_never_shrink_with_more_failures_and_stay_capped(failures: int, free: int) -> None:
    now, then = lock_seconds(failures, free, SETTINGS), lock_seconds(failures + 1, free, SETTINGS)
    assert 0 <= now <= then <= SETTINGS.max_lock_s


@pytest.mark.parametrize(("address", "key"), [
    ("192.0.2.7", "addr:192.0.2.7"),
    ("2001:db8::1", "addr:2001:db8::/64"),
    ("2001:db8::ffff:1:2", "addr:2001:db8::/64"),
    ("::ffff:192.0.2.7", "addr:192.0.2.7"),
    ("testclient", "addr:testclient"),
])
def test_address_keys(address: str, key: str) -> None:
    assert address_key(address) == key


def test_usernames_are_keyed_as_stored() -> None:
    assert user_key(" Owner@Example.COM ") == "user:owner@example.com"
    assert user_key("not an address") == "user:not an address"
    assert len(user_key("x" * 1000)) == 300


@pytest.mark.parametrize("bad", [{"user_free_failures": -1}, {"first_lock_s": 0}, {"first_lock_s": 10,
                                 "max_lock_s": 5}, {"forget_after_s": 0}, {"recheck_s": -1}])
def test_settings_refuse_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ThrottleSettings(**bad)  # type: ignore[arg-type]
