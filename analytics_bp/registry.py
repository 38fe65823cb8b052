"""A host-wide, append-only set of values per key and period, shared by the workers through flock.

Why: the cardinality guard (the first N tag values per domain and month) and `seen()` (distinct
identifiers per salt period) need the same thing: every worker of a host agrees on which values are
already in the set, across restarts, and nothing outlives its period. One file per key and period,
appended under an exclusive lock; a process keeps what it has read and reads only what others
appended since; folders of other periods are deleted when a new period starts. Files are opened
with safefs.open_private: a symbolic link planted here is refused, never followed, so no beacon can
make the collector append to a file outside its state.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import threading
from pathlib import Path

from . import safefs


class PeriodRegistry:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._period = ""
        self._known: dict[str, set[str]] = {}
        self._offsets: dict[str, int] = {}

    def contains(self, period: str, key: str, value: str) -> bool:
        """What this process already knows, without touching the disk (the hot path)."""
        return period == self._period and value in self._known.get(key, ())

    def add(self, period: str, key: str, value: str, cap: int | None = None) -> tuple[bool, bool, int]:
        """Add `value` unless the set holds `cap` values already.

        Returns (in the set now, added by this call, size of the set)."""
        clean = value.replace("\n", " ")
        with self._lock:
            self._enter(period)
            known = self._known.setdefault(key, set())
            if clean in known:
                return True, False, len(known)
            path = self._path(period, key)
            safefs.private_dirs(path.parent)
            fd = safefs.open_private(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
            with os.fdopen(fd, "a+", encoding="utf-8", errors="surrogatepass") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                handle.seek(self._offsets.get(key, 0))
                known.update(handle.read().splitlines())
                added = clean not in known and (cap is None or len(known) < cap)
                if added:
                    handle.write(clean + "\n")
                    known.add(clean)
                handle.flush()
                self._offsets[key] = handle.tell()
            return clean in known, added, len(known)

    def size(self, period: str, key: str) -> int:
        return len(self._known.get(key, ())) if period == self._period else 0

    def _path(self, period: str, key: str) -> Path:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:24]
        return self.root / period / digest

    def _enter(self, period: str) -> None:
        """A new period: forget the old one and delete other periods' files on this host."""
        if period == self._period:
            return
        self._period = period
        self._known.clear()
        self._offsets.clear()
        if self.root.is_dir():
            for folder in self.root.iterdir():
                if folder.name == period:
                    continue
                if safefs.is_symlink(folder):
                    folder.unlink()  # the link itself, never what it points to
                elif folder.is_dir():
                    shutil.rmtree(folder, ignore_errors=True)
