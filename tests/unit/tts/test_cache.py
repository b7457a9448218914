"""SegmentCache: addressing, atomic writes, LRU eviction under a cap, and several processes at once."""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
import random
import time
from pathlib import Path

import pytest

from tts.cache import LOW_WATER, EntryTooLarge, SegmentCache


def _counter_clock() -> itertools.count[int]:
    return itertools.count(time.time_ns(), 1_000)


def _cache(tmp_path: Path, max_bytes: int) -> SegmentCache:
    clock = _counter_clock()
    return SegmentCache(tmp_path / "segments", max_bytes, clock=lambda: next(clock))


def test_key_is_sha256_of_length_prefixed_parts() -> None:
    key = SegmentCache.key("espeak", "en-us+f3", "hello")
    assert len(key) == 64 and int(key, 16) >= 0
    assert key == SegmentCache.key("espeak", "en-us+f3", "hello")
    assert SegmentCache.key("ab", "c") != SegmentCache.key("a", "bc")
    assert SegmentCache.key("a") != SegmentCache.key("a", "")


def test_path_fans_out_by_the_first_two_hex_digits(tmp_path: Path) -> None:
    cache = _cache(tmp_path, 1000)
    key = SegmentCache.key("x")
    assert cache.path(key) == tmp_path / "segments" / key[:2] / f"{key[2:]}.wav"
    with pytest.raises(ValueError):
        cache.path("../../etc/passwd")


def test_put_then_get_round_trips(tmp_path: Path) -> None:
    cache = _cache(tmp_path, 1000)
    key = SegmentCache.key("x")
    assert cache.get(key) is None
    path = cache.put(key, b"RIFF data")
    assert path.read_bytes() == b"RIFF data"
    assert cache.get(key) == b"RIFF data"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_least_recently_used_is_evicted_first(tmp_path: Path) -> None:
    cache = _cache(tmp_path, 350)  # low water 315: one eviction makes room
    keys = [SegmentCache.key(str(i)) for i in range(3)]
    for key in keys:
        cache.put(key, b"x" * 100)
    assert cache.get(keys[0]) is not None  # keys[1] is now the least recently used
    newest = SegmentCache.key("new")
    cache.put(newest, b"y" * 100)
    assert cache.get(keys[1]) is None
    assert cache.get(keys[0]) is not None and cache.get(keys[2]) is not None
    assert cache.get(newest) == b"y" * 100


def test_eviction_goes_down_to_the_low_water_mark(tmp_path: Path) -> None:
    cache = _cache(tmp_path, 1000)
    for i in range(10):
        cache.put(SegmentCache.key(str(i)), b"z" * 100)
    assert cache.total_bytes() == 1000
    cache.put(SegmentCache.key("more"), b"z" * 100)
    assert cache.total_bytes() <= 1000 * LOW_WATER
    assert cache.get(SegmentCache.key("0")) is None and cache.get(SegmentCache.key("more")) is not None


def test_replacing_an_entry_does_not_count_it_twice(tmp_path: Path) -> None:
    cache = _cache(tmp_path, 250)
    key, other = SegmentCache.key("a"), SegmentCache.key("b")
    cache.put(other, b"o" * 100)
    for _ in range(5):
        cache.put(key, b"k" * 100)
    assert cache.get(other) is not None  # 200 bytes held: nothing needed evicting


def test_entry_larger_than_the_cache_is_refused(tmp_path: Path) -> None:
    cache = _cache(tmp_path, 10)
    with pytest.raises(EntryTooLarge):
        cache.put(SegmentCache.key("big"), b"b" * 11)


def test_lost_counter_is_rebuilt_from_the_directory(tmp_path: Path) -> None:
    cache = _cache(tmp_path, 300)
    for i in range(3):
        cache.put(SegmentCache.key(str(i)), b"x" * 100)
    (tmp_path / "segments" / ".size").unlink()
    cache.put(SegmentCache.key("3"), b"x" * 100)
    assert cache.total_bytes() <= 300


def test_stale_temporary_files_are_swept(tmp_path: Path) -> None:
    cache = _cache(tmp_path, 200)
    cache.put(SegmentCache.key("a"), b"x" * 100)
    stale = cache.path(SegmentCache.key("a")).parent / ".tmp-crashed"
    stale.write_bytes(b"partial")
    os.utime(stale, ns=(0, 0))
    assert cache.total_bytes() == 100
    assert not stale.exists()


# --- several processes ---------------------------------------------------------------------------


def _payload(key: str) -> bytes:
    """Content that proves itself: a 32-byte digest of the key followed by a body of varying length."""
    size = 500 + int(key[:3], 16) % 3000
    body = (key.encode() * (size // 64 + 1))[:size]
    return hashlib.sha256(body).digest() + body


def _intact(data: bytes) -> bool:
    return hashlib.sha256(data[32:]).digest() == data[:32]


def _worker(
    directory: str, max_bytes: int, seed: int, rounds: int, queue: multiprocessing.Queue[str]
) -> None:
    cache = SegmentCache(Path(directory), max_bytes)
    rng = random.Random(seed)
    problems = 0
    for _ in range(rounds):
        key = SegmentCache.key(str(rng.randrange(60)))
        data = cache.get(key)
        if data is None:
            cache.put(key, _payload(key))
        elif data != _payload(key) or not _intact(data):
            problems += 1
    queue.put(f"{seed}:{problems}")


def test_processes_sharing_a_cache_never_read_partial_entries(tmp_path: Path) -> None:
    directory, max_bytes = str(tmp_path / "shared"), 40_000  # ~60 keys of ~2 kB: constant eviction
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[str] = context.Queue()
    workers = [context.Process(target=_worker, args=(directory, max_bytes, s, 400, queue)) for s in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    results = sorted(queue.get(timeout=5) for _ in workers)
    assert results == [f"{s}:0" for s in range(4)]
    cache = SegmentCache(Path(directory), max_bytes)
    assert cache.total_bytes() <= max_bytes
    assert int((Path(directory) / ".size").read_text()) == cache.total_bytes()
