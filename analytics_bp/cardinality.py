"""Bound the number of distinct values of every visitor-controlled tag.

Why: InfluxDB 2 OSS enforces no series limit, and each new tag value is a new series forever (until
its shard expires). Values are admitted per (domain, tag) and per calendar month up to a cap; the
admitted set is a small append-only file per key shared by the workers of a host (flock), so the cap
holds across workers and restarts. Past the cap a value becomes `(other)`. The registry renews each
month, so the raw bucket holds at most about two months' worth of admitted values.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from .points import valid_text

OTHER = "(other)"


class TagGuard:
    def __init__(self, directory: str, cap: int) -> None:
        self.root = Path(directory) / "tags"
        self.cap = cap
        self._lock = threading.Lock()
        self._month = ""
        self._month_checked = 0.0
        self._known: dict[tuple[str, str], set[str]] = {}
        self._full: set[tuple[str, str]] = set()

    def admit(self, scope: str, tag: str, value: str, cap: int | None = None) -> str:
        """`value` if it is (or can still become) one of the first `cap` values, else `(other)`."""
        self._roll_month()
        key = (scope, tag)
        known = self._known.get(key)
        if known is not None and value in known:
            return value
        if key in self._full:
            return OTHER
        with self._lock:
            return self._admit_slow(key, value, cap or self.cap)

    def _roll_month(self) -> None:
        now = time.time()
        if now - self._month_checked < 1.0:
            return
        self._month_checked = now
        month = datetime.fromtimestamp(now, UTC).strftime("%Y-%m")
        if month != self._month:
            with self._lock:
                self._known.clear()
                self._full.clear()
                self._month = month
                self._prune_old_months(month)

    def _prune_old_months(self, month: str) -> None:
        if not self.root.is_dir():
            return
        months = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        for old in months[:-2]:
            if old < month:
                shutil.rmtree(self.root / old, ignore_errors=True)

    def _path(self, key: tuple[str, str]) -> Path:
        digest = hashlib.sha256(f"{key[0]}\x00{key[1]}".encode()).hexdigest()[:24]
        return self.root / self._month / f"{key[1]}-{digest}"

    def _admit_slow(self, key: tuple[str, str], value: str, cap: int) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        value = valid_text(value)  # a lone surrogate must never fail the registry's write
        clean = value.replace("\n", " ")
        with path.open("a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            admitted = set(handle.read().splitlines())
            if clean not in admitted and len(admitted) < cap:
                handle.write(clean + "\n")
                handle.flush()
                admitted.add(clean)
        self._known[key] = admitted
        if clean in admitted:
            return value
        self._full.add(key)
        return OTHER
