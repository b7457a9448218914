"""The legacy credential cache: argon2 once, then HMAC-keyed successes for a TTL; never a wrong hit."""

from __future__ import annotations

import threading

import pytest
from argon2 import PasswordHasher
from hypothesis import given, settings
from hypothesis import strategies as st

from api.core.credentials import CacheSettings, CredentialCache

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
"""Cheap argon2 parameters, so tests run many verifies; the cache logic does not depend on the cost."""
KEY = bytes(range(32))


class Store:
    """Stored hashes by username, counting lookups (the service's account query)."""

    def __init__(self, **passwords: str) -> None:
        self.hashes = {user: FAST.hash(pw) for user, pw in passwords.items()}
        self.lookups = 0

    def __call__(self, username: str) -> str | None:
        self.lookups += 1
        return self.hashes.get(username)

    def set_password(self, username: str, password: str) -> None:
        self.hashes[username] = FAST.hash(password)


def make_cache(**kwargs: float | int) -> CredentialCache:
    return CredentialCache(KEY, CacheSettings(**kwargs), hasher=FAST)  # type: ignore[arg-type]


def test_a_success_is_verified_once_then_cached() -> None:
    cache, store = make_cache(), Store(alice="s3cret")
    assert cache.verify("alice", "s3cret", store, now=0.0)
    assert cache.verify("alice", "s3cret", store, now=1.0)
    assert cache.verify("alice", "s3cret", store, now=59.9)
    assert cache.argon2_runs == 1
    assert store.lookups == 3
    assert len(cache) == 1


def test_the_ttl_ends_the_trust() -> None:
    cache, store = make_cache(ttl_s=60.0), Store(alice="s3cret")
    assert cache.verify("alice", "s3cret", store, now=0.0)
    assert cache.verify("alice", "s3cret", store, now=60.0)
    assert cache.argon2_runs == 2


def test_a_wrong_password_never_hits_a_cached_success() -> None:
    cache, store = make_cache(), Store(alice="s3cret")
    assert cache.verify("alice", "s3cret", store, now=0.0)
    for wrong in ("s3cre", "s3cret ", "S3CRET", "", "s3cret\x00"):
        assert not cache.verify("alice", wrong, store, now=1.0)


def test_username_and_password_cannot_be_shifted_into_each_other() -> None:
    cache, store = make_cache(), Store(ab="c")
    store.hashes["a"] = store.hashes["ab"]
    assert cache.verify("ab", "c", store, now=0.0)
    # "a" + "bc" concatenates to the same bytes as "ab" + "c": the key must still differ
    assert not cache.verify("a", "bc", store, now=0.0)


def test_another_user_with_the_same_password_is_verified_separately() -> None:
    cache, store = make_cache(), Store(alice="same", bob="same")
    assert cache.verify("alice", "same", store, now=0.0)
    assert cache.verify("bob", "same", store, now=0.0)
    assert cache.argon2_runs == 2
    assert not cache.verify("carol", "same", store, now=0.0)


def test_a_changed_password_retires_the_cached_success_without_invalidate() -> None:
    cache, store = make_cache(), Store(alice="old")
    assert cache.verify("alice", "old", store, now=0.0)
    store.set_password("alice", "new")  # e.g. by another process
    assert not cache.verify("alice", "old", store, now=1.0)
    assert cache.verify("alice", "new", store, now=2.0)


def test_invalidate_drops_every_answer_about_a_user() -> None:
    cache, store = make_cache(), Store(alice="a1", bob="b1")
    assert cache.verify("alice", "a1", store, now=0.0)
    assert not cache.verify("alice", "wrong", store, now=0.0)
    assert cache.verify("bob", "b1", store, now=0.0)
    runs = cache.argon2_runs
    cache.invalidate("alice")
    assert cache.verify("alice", "a1", store, now=1.0)
    assert not cache.verify("alice", "wrong", store, now=1.0)
    assert cache.argon2_runs == runs + 2
    assert cache.verify("bob", "b1", store, now=1.0)
    assert cache.argon2_runs == runs + 2


def test_a_deleted_user_is_refused_even_with_a_cached_success() -> None:
    cache, store = make_cache(), Store(alice="s3cret")
    assert cache.verify("alice", "s3cret", store, now=0.0)
    del store.hashes["alice"]
    assert not cache.verify("alice", "s3cret", store, now=1.0)


def test_a_repeated_failure_is_refused_without_argon2_for_a_while() -> None:
    cache, store = make_cache(negative_ttl_s=10.0), Store(alice="s3cret")
    assert not cache.verify("alice", "old-password", store, now=0.0)
    assert not cache.verify("alice", "old-password", store, now=5.0)
    assert cache.argon2_runs == 1
    assert not cache.verify("alice", "old-password", store, now=10.0)
    assert cache.argon2_runs == 2
    assert len(cache) == 0


def test_the_negative_cache_never_locks_out_the_right_password() -> None:
    cache, store = make_cache(negative_ttl_s=1000.0), Store(alice="old")
    assert not cache.verify("alice", "new", store, now=0.0)  # tried before the change
    store.set_password("alice", "new")
    assert cache.verify("alice", "new", store, now=1.0)
    for attempt in range(20):
        assert not cache.verify("alice", f"guess{attempt}", store, now=2.0)
    assert cache.verify("alice", "new", store, now=3.0)


def test_unknown_users_cost_an_argon2_run_and_are_refused() -> None:
    cache, store = make_cache(), Store()
    assert not cache.verify("nobody", "x", store, now=0.0)
    assert cache.argon2_runs == 1
    assert not cache.verify("nobody", "x", store, now=1.0)
    assert cache.argon2_runs == 1  # the negative cache
    store.set_password("nobody", "x")  # the user is created with exactly that password
    assert cache.verify("nobody", "x", store, now=2.0)


def test_a_corrupt_stored_hash_is_a_refusal() -> None:
    cache = make_cache()
    assert not cache.verify("alice", "pw", lambda _user: "not-an-argon2-hash", now=0.0)
    assert not cache.verify("alice", "pw", lambda _user: "$argon2id$v=19$m=8,t=1,p=1$AAAA$AAAA", now=0.0)


def test_the_cache_is_a_bounded_lru() -> None:
    cache = make_cache(max_entries=2)
    store = Store(a="1", b="2", c="3")
    assert cache.verify("a", "1", store, now=0.0)
    assert cache.verify("b", "2", store, now=0.0)
    assert cache.verify("a", "1", store, now=0.0)  # a is now the most recent
    assert cache.verify("c", "3", store, now=0.0)  # evicts b
    assert len(cache) == 2
    runs = cache.argon2_runs
    assert cache.verify("a", "1", store, now=0.0)
    assert cache.argon2_runs == runs
    assert cache.verify("b", "2", store, now=0.0)
    assert cache.argon2_runs == runs + 1


def test_the_negative_table_cannot_evict_successes() -> None:
    cache = make_cache(max_entries=2, max_negative_entries=2)
    store = Store(alice="s3cret")
    assert cache.verify("alice", "s3cret", store, now=0.0)
    for attempt in range(10):
        assert not cache.verify("alice", f"no{attempt}", store, now=0.0)
    runs = cache.argon2_runs
    assert cache.verify("alice", "s3cret", store, now=1.0)
    assert cache.argon2_runs == runs


def test_zero_ttl_disables_caching() -> None:
    cache, store = make_cache(ttl_s=0.0, negative_ttl_s=0.0), Store(alice="s3cret")
    assert cache.verify("alice", "s3cret", store, now=0.0)
    assert cache.verify("alice", "s3cret", store, now=0.0)
    assert not cache.verify("alice", "x", store, now=0.0)
    assert not cache.verify("alice", "x", store, now=0.0)
    assert cache.argon2_runs == 4


def test_clear_forgets_everything() -> None:
    cache, store = make_cache(), Store(alice="s3cret")
    assert cache.verify("alice", "s3cret", store, now=0.0)
    cache.clear()
    assert len(cache) == 0
    assert cache.verify("alice", "s3cret", store, now=0.0)
    assert cache.argon2_runs == 2


def test_caches_with_different_keys_share_nothing() -> None:
    store = Store(alice="s3cret")
    one, two = make_cache(), CredentialCache(b"\xff" * 32, hasher=FAST)
    assert one.verify("alice", "s3cret", store, now=0.0)
    assert one._pair_key("alice", "s3cret") != two._pair_key("alice", "s3cret")


def test_nothing_secret_is_kept_in_clear() -> None:
    cache, store = make_cache(), Store(alice="hunter2-password")
    assert cache.verify("alice", "hunter2-password", store, now=0.0)
    state = repr(vars(cache._good)) + repr(vars(cache._bad))
    assert "hunter2" not in state and "alice" not in state


def test_unicode_and_unpaired_surrogates() -> None:
    cache, store = make_cache(), Store(**{"名前": "pässwörd 🎉"})
    assert cache.verify("名前", "pässwörd 🎉", store, now=0.0)
    assert not cache.verify("名前", "\ud800", store, now=0.0)


@pytest.mark.parametrize("key", [b"", b"short"])
def test_keys_must_be_long_enough(key: bytes) -> None:
    with pytest.raises(ValueError):
        CredentialCache(key)


@pytest.mark.parametrize(
    "kwargs", [{"ttl_s": -1.0}, {"negative_ttl_s": -1.0}, {"max_entries": 0}, {"max_negative_entries": 0}]
)
def test_settings_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CacheSettings(**kwargs)  # type: ignore[arg-type]


def test_with_random_key() -> None:
    a, b = CredentialCache.with_random_key(hasher=FAST), CredentialCache.with_random_key(hasher=FAST)
    assert a._pair_key("u", "p") != b._pair_key("u", "p")


def test_concurrent_verifies_agree() -> None:
    cache, store = make_cache(), Store(alice="s3cret")
    results: list[bool] = []

    def worker(password: str) -> None:
        for i in range(20):
            results.append(cache.verify("alice", password, store, now=float(i)))

    threads = [threading.Thread(target=worker, args=(pw,)) for pw in ("s3cret", "wrong", "s3cret", "wrong")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 40 and results.count(False) == 40


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["alice", "bob"]), st.sampled_from(["a", "b", "c"]), st.booleans()),
        max_size=25,
    )
)
def test_the_cache_always_answers_what_argon2_would(steps: list[tuple[str, str, bool]]) -> None:
    """Property: with password changes in between, verify equals the truth at every step."""
    cache, store = make_cache(), Store(alice="a", bob="b")
    truth = {"alice": "a", "bob": "b"}
    for now, (user, password, change) in enumerate(steps):
        if change:
            store.set_password(user, password)
            truth[user] = password
        assert cache.verify(user, password, store, now=float(now)) == (truth[user] == password)
