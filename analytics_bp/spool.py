"""The write-ahead spool: segment files of line protocol on disk, and the lines set aside.

Pure filesystem, no network and no threads, so it is testable on its own. A segment is written to a
temporary name, fsynced and renamed (so a reader sees all of it or none), and named by time, slot
and sequence (so sorting the names gives delivery order). A deliverer locks a segment with flock
before reading it, so two workers never send the same segment at once, and deletes it once InfluxDB
took it. Lines that cannot be delivered are appended, on their own, to `rejected/` with the reason.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from io import BufferedReader
from pathlib import Path


class Spool:
    def __init__(self, directory: str, slot: int) -> None:
        self.dir = Path(directory)
        self.rejected_dir = self.dir / "rejected"
        self.rejected_dir.mkdir(parents=True, exist_ok=True)
        self.slot = slot
        self._seq = 0
        self._lock = threading.Lock()

    def write_segment(self, data: bytes) -> int:
        """Write one segment durably (the directory entry is fsynced by `sync()`); its size."""
        with self._lock:
            self._seq += 1
            name = f"{time.time_ns():020d}-{self.slot:03d}-{self._seq:08d}.lp"
        tmp = self.dir / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, self.dir / name)
        return len(data)

    def sync(self) -> None:
        """fsync the directory, so the renamed segments survive a crash."""
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def pending(self) -> list[Path]:
        """Segments waiting for delivery, oldest first (any worker's, and any dead worker's)."""
        return sorted(self.dir.glob("*.lp"))

    def size(self) -> int:
        total = 0
        for segment in self.dir.glob("*.lp"):
            with contextlib.suppress(FileNotFoundError):
                total += segment.stat().st_size
        return total

    @staticmethod
    def open_locked(segment: Path) -> BufferedReader | None:
        """The segment, opened and exclusively locked; None when another deliverer has it or
        has delivered it already. Closing the handle releases the lock."""
        try:
            handle = segment.open("rb")
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            handle.close()
            if err.errno in (errno.EAGAIN, errno.EACCES):
                return None
            raise
        if os.fstat(handle.fileno()).st_nlink == 0:
            handle.close()
            return None  # delivered and unlinked while we waited
        return handle

    @staticmethod
    def delete(segment: Path) -> None:
        segment.unlink(missing_ok=True)

    def set_aside(self, lines: list[bytes], reason: str) -> Path:
        """Keep lines that cannot be delivered, fsynced, with the reason in a `.reason` file."""
        name = f"{time.time_ns():020d}-{self.slot:03d}-{threading.get_ident() % 10**6:06d}.lp"
        target = self.rejected_dir / name
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"".join(item + b"\n" for item in lines))
            os.fsync(fd)
        finally:
            os.close(fd)
        target.with_suffix(".reason").write_text(reason + "\n")
        return target

    def set_aside_count(self) -> int:
        return len(list(self.rejected_dir.glob("*.lp")))
