"""Timestamps that never repeat, and the writer slots that make them unique across processes.

Why: two points with the same series and timestamp overwrite each other in InfluxDB. A writer's
timestamp is microsecond time, forced strictly increasing within the process, times 1000 plus the
writer's slot (0-999), claimed exclusively per host with a lock file. Then two beacons never share
a series and time, and re-delivering a spooled segment overwrites itself instead of doubling.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

SLOTS = 1000


class UniqueClock:
    """Nanosecond timestamps unique to one writer slot."""

    def __init__(self, slot: int) -> None:
        if not 0 <= slot < SLOTS:
            raise ValueError("slot must be 0..999")
        self.slot = slot
        self._last_us = 0
        self._lock = threading.Lock()

    def next_ns(self) -> int:
        now_us = time.time_ns() // 1000
        with self._lock:
            if now_us <= self._last_us:
                now_us = self._last_us + 1
            self._last_us = now_us
        return now_us * 1000 + self.slot


def claim_slot(directory: Path) -> tuple[int, int]:
    """Exclusively lock one of SLOTS slot files; returns (slot, the lock's file descriptor).

    The lock lives as long as the descriptor: a dead process's slot is free again at once."""
    directory.mkdir(parents=True, exist_ok=True)
    first = os.getpid() % SLOTS
    for i in range(SLOTS):
        slot = (first + i) % SLOTS
        fd = os.open(directory / f"{slot:03d}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return slot, fd
        except OSError:
            os.close(fd)
    raise RuntimeError(f"all {SLOTS} writer slots in {directory} are taken")
