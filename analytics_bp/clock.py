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

from . import safefs

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


def host_slots(host_id: int | None, per_host: int) -> range:
    """The slots this host's writers may use: all of them on a single host, else the host's own
    share (ANALYTICS_HOST_ID x ANALYTICS_SLOTS_PER_HOST), so that two hosts never share a slot."""
    if host_id is None:
        return range(SLOTS)
    return range(host_id * per_host, (host_id + 1) * per_host)


def claim_slot(directory: Path, slots: range = range(SLOTS)) -> tuple[int, int]:
    """Exclusively lock one slot of `slots` (lowest free first); returns (slot, the lock's file
    descriptor). The lock lives as long as the descriptor: a dead process's slot is free again at
    once. Lowest first, not by pid: containers' workers have equal pids anyway, so uniqueness
    across hosts must come from the host's share of the slots, never from chance."""
    safefs.private_dirs(directory)
    for slot in slots:
        fd = safefs.open_private(directory / f"{slot:03d}.lock", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return slot, fd
        except OSError:
            os.close(fd)
    raise RuntimeError(f"all {len(slots)} writer slots of this host ({slots.start}-{slots.stop - 1}) "
                       f"in {directory} are taken: fewer workers, or more ANALYTICS_SLOTS_PER_HOST")
