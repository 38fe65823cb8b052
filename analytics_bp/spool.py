"""The write-ahead spool: segment files of line protocol on disk, and the lines set aside.

Pure filesystem, no network and no threads, so it is testable on its own. A segment is written to a
temporary name, fsynced and renamed (so a reader sees all of it or none), and named by time, slot
and sequence (so sorting the names gives delivery order). A deliverer locks a segment with flock
before reading it, so two workers never send the same segment at once, and deletes it once InfluxDB
took it. Lines that cannot be delivered are appended, on their own, to `rejected/` with the reason.

Nothing here follows a symbolic link (safefs): a segment that is a link or a stranger's file is
refused with a log line and removed (the link itself), never read, so no one can feed the spool
points or make it read a file outside the state folder.

Framing: every line is stored after a comment line holding its CRC-32 (`#crc 1a2b3c4d`; line
protocol allows comments, though they are stripped before sending). A segment cut short by a crash,
or damaged on disk, is read line by line: each line whose checksum matches is delivered, the rest
is set aside. Segments of earlier versions (no framing) are read as they are.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import threading
import time
import zlib
from io import BufferedReader
from pathlib import Path

from . import safefs

log = logging.getLogger("analytics.spool")
FRAME = b"#crc "


def frame(lines: list[bytes]) -> bytes:
    """Each line preceded by its checksum line."""
    return b"".join(b"%s%08x\n%s\n" % (FRAME, zlib.crc32(item), item) for item in lines)


def unframe(data: bytes) -> tuple[list[bytes], list[bytes]]:
    """(intact lines, damaged or cut lines) of a segment's bytes."""
    raw = data.split(b"\n")
    if not raw[0].startswith(FRAME):
        return [item for item in raw if item], []  # written before framing: as it is
    good: list[bytes] = []
    bad: list[bytes] = []
    complete = data.endswith(b"\n")
    items = raw[:-1] if complete else raw  # the last piece of a cut file has no newline
    i = 0
    while i < len(items):
        header = items[i]
        body = items[i + 1] if i + 1 < len(items) else None
        cut = body is not None and i + 2 == len(items) and not complete
        if header.startswith(FRAME) and body is not None and not cut and _crc_ok(header, body):
            good.append(body)
            i += 2
        elif header.startswith(FRAME):
            bad.extend(x for x in (header, body) if x)
            i += 2
        else:
            bad.append(header)  # a damaged checksum line: resynchronise on the next one
            i += 1
    return good, bad


def _crc_ok(header: bytes, body: bytes) -> bool:
    try:
        return int(header[len(FRAME):], 16) == zlib.crc32(body)
    except ValueError:
        return False


class Spool:
    def __init__(self, directory: str, slot: int) -> None:
        self.dir = Path(directory)
        self.rejected_dir = self.dir / "rejected"
        safefs.private_dirs(self.rejected_dir)
        self.slot = slot
        self._seq = 0
        self._lock = threading.Lock()

    def write_segment(self, data: bytes) -> int:
        """Write one segment durably (the directory entry is fsynced by `sync()`); its size.

        On any OSError (a full or failing disk) nothing is left behind and the error is raised:
        the caller keeps the lines and tries again."""
        with self._lock:
            self._seq += 1
            name = f"{time.time_ns():020d}-{self.slot:03d}-{self._seq:08d}.lp"
        tmp = self.dir / f".{name}.tmp"
        try:
            _write_file(tmp, data)
            os.rename(tmp, self.dir / name)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
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
                total += os.lstat(segment).st_size
        return total

    @staticmethod
    def open_locked(segment: Path) -> BufferedReader | None:
        """The segment, opened and exclusively locked; None when another deliverer has it or
        has delivered it already. Closing the handle releases the lock."""
        try:
            handle = os.fdopen(safefs.open_private(segment, os.O_RDONLY), "rb")
        except FileNotFoundError:
            return None
        except safefs.UnsafeState as err:
            log.error("spool segment %s %s", segment, err.strerror)
            segment.unlink(missing_ok=True)  # a link is removed itself; its target is untouched
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
        try:
            _write_file(target, b"".join(item + b"\n" for item in lines))
            _write_file(target.with_suffix(".reason"), reason.encode(errors="replace") + b"\n")
        except OSError:
            target.unlink(missing_ok=True)
            raise
        return target

    def prune_set_aside(self, max_age: float) -> int:
        """Delete set-aside lines (and their reasons) older than `max_age` seconds: they hold
        visitor hashes and notes, and are kept no longer than the raw bucket keeps points."""
        cutoff = time.time() - max_age
        removed = 0
        for path in list(self.rejected_dir.iterdir()):
            with contextlib.suppress(FileNotFoundError):
                if os.lstat(path).st_mtime < cutoff:
                    path.unlink()
                    removed += path.suffix == ".lp"
        return removed

    def set_aside_count(self) -> int:
        return len(list(self.rejected_dir.glob("*.lp")))


def _write_file(path: Path, data: bytes) -> None:
    """Create `path` with all of `data`, fsynced. os.write may write less than asked (a disk
    filling up): loop until every byte is written or an error says why not."""
    fd = safefs.open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
