"""Listen's per-user limit: a token bucket per user, bounded in users (pure: time is an argument)."""

from __future__ import annotations

import pytest

from api.fronts.web.routes_send import ListenLimits
from ivr.errors import ListenThrottled


def test_listen_limits_are_a_token_bucket_per_user() -> None:
    limits = ListenLimits(per_minute=6.0, burst=2)  # one every 10 s
    limits.check(1, 0.0)
    limits.check(1, 0.0)
    with pytest.raises(ListenThrottled, match="try again in 10 s") as caught:
        limits.check(1, 0.0)
    assert caught.value.status_text == "ERROR: TOO MANY LISTEN REQUESTS"
    limits.check(2, 0.0)  # another user
    limits.check(1, 10.0)
    with pytest.raises(ListenThrottled):
        limits.check(1, 15.0)


def test_listen_limits_forget_the_least_recently_seen_users(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ListenLimits, "MAX_USERS", 2)
    limits = ListenLimits(per_minute=0.001, burst=1)
    limits.check(1, 0.0)
    limits.check(2, 0.0)
    limits.check(3, 0.0)  # user 1 is forgotten: a fresh bucket
    limits.check(1, 0.0)
    with pytest.raises(ListenThrottled):
        limits.check(3, 0.0)
