"""A content-addressed cache of rendered segments on disk, capped in size, evicting least recently used.

Several processes (dialer workers, the API) may share one directory:

- entries are written to a temporary file and renamed into place, so a reader sees a whole file or none;
- an entry's modification time is its last use (`get` and `put` set it), the LRU order;
- the running total lives in a small counter file updated under an exclusive `fcntl` lock, so a `put`
  costs a lock and a few bytes of I/O; when the total passes the cap, the holder of the lock scans
  the directory, deletes the least recently used entries down to LOW_WATER of the cap, and rewrites
  the counter with the exact total;
- a reader racing an eviction either reads the whole file (POSIX keeps an unlinked open file readable)
  or finds it gone and gets None, so the caller renders again.

Layout: `<directory>/ab/cdef...` (the sha256 key, first two hex digits as a fan-out directory).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

LOW_WATER = 0.9
"""Eviction frees space down to this fraction of max_bytes, so a full cache does not scan on every put."""
SUFFIX = ".wav"
_TEMP_PREFIX = ".tmp-"
_STALE_TEMP_NS = 3600 * 10**9
_LOCK_NAME = ".lock"
_SIZE_NAME = ".size"


class EntryTooLarge(ValueError):
    """A segment bigger than the whole cache: it is not stored."""


class SegmentCache:
    """Rendered segments keyed by the sha256 of what produced them (engine, voice, settings, text)."""

    def __init__(self, directory: Path, max_bytes: int, clock: Callable[[], int] = time.time_ns) -> None:
        """`clock` gives the time in nanoseconds used as an entry's last use (tests pass a counter)."""
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._clock = clock
        self.directory.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(*parts: str) -> str:
        """The sha256 hex digest of the parts; each part is length-prefixed so ('ab','c') != ('a','bc')."""
        digest = hashlib.sha256()
        for part in parts:
            data = part.encode("utf-8")
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
        return digest.hexdigest()

    def path(self, key: str) -> Path:
        """Where the entry of `key` lives (whether or not it exists)."""
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"not a cache key: {key!r}")
        return self.directory / key[:2] / (key[2:] + SUFFIX)

    def get(self, key: str) -> bytes | None:
        """The entry's bytes, marking it most recently used; None when absent or evicted meanwhile."""
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        self._touch(path)
        return data

    def lookup(self, key: str) -> Path | None:
        """The entry's path, marking it most recently used, for callers that hand the file on (a prompt
        to play); None when absent."""
        path = self.path(key)
        if not path.exists():
            return None
        self._touch(path)
        return path

    def put(self, key: str, data: bytes) -> Path:
        """Store `data` under `key` atomically, then evict if the cache is over its cap.

        Raises EntryTooLarge when `data` alone is bigger than the cap.
        """
        if len(data) > self.max_bytes:
            raise EntryTooLarge(f"segment of {len(data)} bytes exceeds the cache cap of {self.max_bytes}")
        path = self.path(key)
        path.parent.mkdir(exist_ok=True)
        temp = self._write_temp(path.parent, data)
        with self._locked():
            try:
                old_size = path.stat().st_size
            except FileNotFoundError:
                old_size = 0
            total = self._read_total() + len(data) - old_size
            os.replace(temp, path)
            if total > self.max_bytes:
                total = self._evict(keep=path)
            self._write_total(total)
        return path

    def total_bytes(self) -> int:
        """The exact size of all entries, by scanning the directory."""
        return sum(size for _, size, _ in self._entries())

    def _write_temp(self, directory: Path, data: bytes) -> Path:
        fd, name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            now = self._clock()
            os.utime(name, ns=(now, now))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
            raise
        return Path(name)

    def _touch(self, path: Path) -> None:
        now = self._clock()
        with contextlib.suppress(FileNotFoundError):
            os.utime(path, ns=(now, now))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.directory / _LOCK_NAME, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _read_total(self) -> int:
        try:
            return int((self.directory / _SIZE_NAME).read_text() or "0")
        except (FileNotFoundError, ValueError):
            return self.total_bytes()

    def _write_total(self, total: int) -> None:
        counter = self.directory / _SIZE_NAME
        temp = counter.with_name(f"{_SIZE_NAME}.{os.getpid()}")
        temp.write_text(str(total))
        os.replace(temp, counter)

    def _entries(self) -> Iterator[tuple[Path, int, int]]:
        """(path, size, last use in ns) of every entry; removes temporary files left by crashed writers."""
        stale_before = self._clock() - _STALE_TEMP_NS
        for sub in os.scandir(self.directory):
            if not (sub.is_dir() and len(sub.name) == 2):
                continue
            for entry in os.scandir(sub.path):
                try:
                    info = entry.stat()
                except FileNotFoundError:
                    continue
                if entry.name.startswith(_TEMP_PREFIX):
                    if info.st_mtime_ns < stale_before:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(entry.path)
                    continue
                yield Path(entry.path), info.st_size, info.st_mtime_ns

    def _evict(self, keep: Path) -> int:
        """Delete least recently used entries (never `keep`) down to LOW_WATER; returns the new total."""
        entries = sorted(self._entries(), key=lambda e: (e[2], e[0].name))
        total = sum(size for _, size, _ in entries)
        target = int(self.max_bytes * LOW_WATER)
        evicted = 0
        for path, size, _ in entries:
            if total <= target:
                break
            if path == keep:
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            total -= size
            evicted += 1
        log.debug("segment cache %s: evicted %d entries, %d bytes kept", self.directory, evicted, total)
        return total
