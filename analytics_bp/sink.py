"""One process's writer: accepted points from memory to the spool to InfluxDB, losing none.

Path of a point: `write()` appends to an in-memory buffer (the only work on the request path).
A commit thread, once per ANALYTICS_FLUSH_INTERVAL (or sooner when a batch is full), group-commits
the buffer to spool segments of at most two batches each (spool.py). A delivery thread sends
pending segments oldest first, gzip, ANALYTICS_BATCH_SIZE lines per request, two requests in flight
(influx.py), and deletes each segment once InfluxDB took it.

Why two threads: a commit never waits for InfluxDB, so a slow or large delivery cannot stretch the
group-commit interval (the kill -9 loss bound) and InfluxDB parses one segment while the next is
committed. Why small segments: memory per delivery stays bounded after a long outage, and the
next segment's requests are sent while the previous one's finish.

Why not influxdb-client's batching WriteApi: it keeps points only in memory, drops a batch after its
retries and loses everything on a crash. With the spool, an outage only grows the spool (beacons
get 503 when it is full), a hard kill loses at most one flush interval, and any worker (or the next
start) delivers segments a dead worker left behind. Timestamps are unique (clock.UniqueClock), so
a segment delivered twice overwrites itself.

No single line can stop the others: a line UTF-8 cannot encode is set aside at commit, and a batch
InfluxDB refuses as invalid (400/413/422) is split in halves and re-sent until only the refused
lines are left; those alone go to `rejected/` with the reason, the rest is delivered.

The sink is created lazily per process (keyed on the pid), so its threads are born after gunicorn's
fork, with or without --preload; `close()` (gunicorn's worker_exit) commits and delivers the rest.
Every counter two threads touch is changed under `_stats_lock`.
"""

from __future__ import annotations

import gzip
import logging
import os
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from typing import Any

from .backfill import Backfill
from .clock import SLOTS, UniqueClock, claim_slot
from .influx import InfluxTarget, InfluxWriter, Posted
from .points import CounterKey
from .schema import counter_lines
from .spool import Spool, frame, unframe

log = logging.getLogger("analytics.sink")

MAX_BACKOFF = 30.0
SENDERS = 2  # write requests in flight at once
PARALLEL_MIN_LINES = 1000
SEGMENTS_IN_FLIGHT = 2  # the next segment is read and sent while the previous one finishes
GZIP_LEVEL = 1


@dataclass(frozen=True)
class _Sent:
    """What one write request (and its halves, after a refusal) came to."""

    retry: bool
    refused: list[bytes]
    reason: str = ""


@dataclass(frozen=True)
class _Delivery:
    """A locked segment whose write requests are queued or in flight."""

    segment: Path
    handle: BufferedReader
    lines: int
    futures: list[Future[_Sent]]


class Sink:
    """One process's writer: buffer -> spool segment -> InfluxDB."""

    def __init__(
        self,
        target: InfluxTarget,
        spool_dir: str,
        spool_max_bytes: int = 256 * 1024 * 1024,
        flush_interval: float = 1.0,
        batch_size: int = 5000,
        timeout_ms: int = 10_000,
        max_buffered: int = 50_000,
        set_aside_retention: float = 30 * 86400,
        backfill: Backfill | None = None,
        slots: range = range(SLOTS),
    ) -> None:
        self.target = target
        self.spool_max_bytes = spool_max_bytes
        self.max_buffered = max_buffered
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.slot, self._slot_fd = claim_slot(Path(spool_dir) / "slots", slots)
        self.clock = UniqueClock(self.slot)
        self.spool = Spool(spool_dir, self.slot)
        self.set_aside_retention = set_aside_retention
        self.backfill = backfill
        self._pruned_at = 0.0
        self._prune_set_aside()
        self._influx = InfluxWriter(target, timeout_ms)
        self._senders = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="analytics-send")
        self._lock = threading.Lock()  # the buffer and the counters
        self._commit_lock = threading.Lock()
        self._deliver_lock = threading.Lock()  # deliver() and its late-window re-runs
        self._stats_lock = threading.Lock()  # stats, spool size, backoff
        self._buffer: list[str] = []
        self._counters: Counter[CounterKey] = Counter()
        self._wake = threading.Event()
        self._committed = threading.Event()
        self._stop = threading.Event()
        self.stats: dict[str, Any] = {
            "accepted": 0, "delivered": 0, "rejected_points": 0, "unencodable_points": 0,
            "dropped_points": 0, "damaged_lines": 0, "write_errors": 0, "last_error": "",
            "last_delivery": 0.0, "spool_error": "",
        }
        self._spool_bytes = self.spool.size()
        self._backoff_until = 0.0
        self._backoff = 0.0
        self._ping_cache: tuple[float, bool] = (0.0, False)
        self._thread = threading.Thread(target=self._run, name="analytics-sink", daemon=True)
        self._thread.start()
        self._deliverer = threading.Thread(target=self._deliver_loop, name="analytics-deliver",
                                           daemon=True)
        self._deliverer.start()

    # -- request path -------------------------------------------------------------------------
    def write(self, line: str) -> None:
        """Buffer a line. At `max_buffered` lines the caller commits the buffer itself (a writer
        faster than the commit thread is slowed down, never dropped); only while the spool's disk
        refuses writes is a line past the cap dropped and counted (`dropped_points`), so memory
        stays bounded whatever happens to the disk. Beacons never get that far: `accepting` is
        False at the cap, and the collector answers 503."""
        with self._lock:
            over = len(self._buffer) >= self.max_buffered
            if not over:
                self._buffer.append(line)
            full = len(self._buffer) >= self.batch_size
        if over:
            if self.stats["spool_error"]:
                self._bump("dropped_points", 1)
                return
            self.commit()
            with self._lock:
                self._buffer.append(line)
        if full:
            self._wake.set()

    def add_count(self, key: CounterKey, n: int = 1) -> None:
        """Aggregate a counter in memory; one point per key and flush (e.g. rejected beacons)."""
        with self._lock:
            self._counters[key] += n

    @property
    def accepting(self) -> bool:
        """False when the spool is full, the disk refuses writes, or the buffer is at its cap: the
        caller should answer 503 (with Retry-After) rather than drop data."""
        return (self._spool_bytes < self.spool_max_bytes and not self.stats["spool_error"]
                and len(self._buffer) < self.max_buffered)

    # -- commit -------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                if self.commit():
                    self._committed.set()
            except Exception:  # the commit thread must survive; only a commit the disk refused is lost
                log.exception("analytics sink commit failed")

    def commit(self) -> int:
        """Group commit: move the buffer and counters into fsynced spool segments."""
        with self._lock:
            lines, self._buffer = self._buffer, []
            counters, self._counters = self._counters, Counter()
        if counters:
            lines.extend(counter_lines(counters.items(), self.clock))
        if not lines:
            return 0
        size = SENDERS * self.batch_size
        with self._commit_lock:
            written = done = 0
            try:
                for i in range(0, len(lines), size):
                    data = self._encode(lines[i : i + size])
                    if data:
                        written += self.spool.write_segment(data)
                    done = min(i + size, len(lines))
                self.spool.sync()
            except OSError as err:
                # Segments written before a failed directory fsync may not survive a crash: keep
                # those lines too (done = 0); committing a line twice is harmless.
                done = 0 if done == len(lines) else done
                self._keep(lines[done:], err)
            else:
                self._disk_recovered()
        with self._stats_lock:
            self._spool_bytes += written
            self.stats["accepted"] += done
        return done

    def _keep(self, lines: list[str], err: OSError) -> None:
        """The disk refused the commit (ENOSPC, EIO, ...): keep the lines, first in line for the
        next commit, and refuse new beacons until a commit succeeds. Lines already in segments
        stay there; a line committed twice would overwrite itself (unique timestamps)."""
        with self._lock:
            self._buffer[:0] = lines
        message = f"spool refuses writes: {err.strerror or type(err).__name__} ({len(lines)} points kept)"
        with self._stats_lock:
            first = not self.stats["spool_error"]
            self.stats["spool_error"] = message
        if first:
            log.error("analytics: %s; beacons get 503 until the disk takes writes again", message)

    def _disk_recovered(self) -> None:
        with self._stats_lock:
            was = self.stats["spool_error"]
            self.stats["spool_error"] = ""
        if was:
            log.warning("analytics: the spool takes writes again")

    def _encode(self, lines: list[str]) -> bytes:
        """The segment's framed bytes; a line UTF-8 cannot encode is set aside alone."""
        try:
            return frame("\n".join(lines).encode().split(b"\n"))
        except UnicodeEncodeError:
            pass
        good: list[bytes] = []
        bad: list[bytes] = []
        for item in lines:
            try:
                good.append(item.encode())
            except UnicodeEncodeError:
                bad.append(item.encode("utf-8", "backslashreplace"))
        self._set_aside(bad, "unencodable: not valid unicode", "unencodable_points")
        return frame(good)

    def _bump(self, counter: str, n: int) -> None:
        with self._stats_lock:
            self.stats[counter] += n

    # -- delivery -----------------------------------------------------------------------------
    def _prune_set_aside(self) -> None:
        """At start, then hourly: set-aside lines past their retention are deleted."""
        self._pruned_at = time.monotonic()
        removed = self.spool.prune_set_aside(self.set_aside_retention)
        if removed:
            log.info("analytics: deleted %d set-aside file(s) past their retention", removed)

    def _deliver_loop(self) -> None:
        """Deliver after each commit, and once per flush interval for retries and orphans."""
        while not self._stop.is_set():
            self._committed.wait(self.flush_interval)
            self._committed.clear()
            try:
                if time.monotonic() - self._pruned_at > 3600:
                    self._prune_set_aside()
                self.deliver()
            except Exception:  # the deliverer must survive anything; the spool keeps the data
                log.exception("analytics sink delivery failed")

    def pending_segments(self) -> list[Path]:
        return self.spool.pending()

    def deliver(self, deadline: float | None = None) -> None:
        """Send pending segments oldest first, two at a time; stop at the first outage and back off.

        The next segment's requests are queued while the previous segment's finish, so InfluxDB
        always has work; a segment is deleted only once all of its requests succeeded. One
        delivery at a time per process, late windows' re-runs included: `drain()` in another
        thread then returns only once what this process delivered is in every rollup too.
        """
        with self._deliver_lock:
            self._deliver(deadline)

    def _deliver(self, deadline: float | None) -> None:
        if time.monotonic() < self._backoff_until:
            return
        in_flight: deque[_Delivery] = deque()
        failed = False
        try:
            for segment in self.spool.pending():
                if failed or (deadline is not None and time.monotonic() > deadline):
                    break
                delivery = self._start_delivery(segment)
                if delivery is not None:
                    in_flight.append(delivery)
                if len(in_flight) >= SEGMENTS_IN_FLIGHT:
                    failed = not self._finish_delivery(in_flight.popleft())
            while in_flight:
                failed = not self._finish_delivery(in_flight.popleft()) or failed
            if not failed and self.backfill is not None:
                self.backfill.run_due()  # late points are in: their windows are rolled up again
        finally:
            for delivery in in_flight:  # only after an unexpected error: unlock, retry later
                delivery.handle.close()
            size = self.spool.size()
            with self._stats_lock:
                self._spool_bytes = size

    def drain(self, timeout: float = 30.0) -> bool:
        """Commit, then deliver until the spool is empty; True when it is.

        Unlike `deliver()`, this also waits for segments another deliverer (this process's delivery
        thread or another worker) holds, so on return everything accepted so far is in InfluxDB.
        """
        self.commit()
        deadline = time.monotonic() + timeout
        while True:
            self.deliver(deadline)
            if not self.spool.pending():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def _start_delivery(self, segment: Path) -> _Delivery | None:
        """Lock the segment and queue its requests; None when another deliverer has it."""
        handle = self.spool.open_locked(segment)
        if handle is None:
            return None
        lines, damaged = unframe(handle.read())  # bytes: sent as stored, never decoded
        if self.backfill is not None:
            self.backfill.note(lines)
        if damaged:
            self._set_aside(damaged, f"torn or damaged spool segment {segment.name}: checksum "
                                     "mismatch or cut short", "damaged_lines")
        futures = [self._submit(batch) for batch in self._batches(lines)]
        return _Delivery(segment, handle, len(lines), futures)

    def _submit(self, batch: list[bytes]) -> Future[_Sent]:
        """Queue a batch's request; sent in this thread once the interpreter is shutting down.

        Why: at interpreter exit (a mounted app's process ending, or gunicorn without our
        worker_exit hook) concurrent.futures refuses new work before atexit's `close_all` runs;
        sending in the closing thread still delivers every accepted point, with no traceback."""
        try:
            return self._senders.submit(self._send, batch)
        except RuntimeError:  # "cannot schedule new futures after (interpreter) shutdown"
            done: Future[_Sent] = Future()
            done.set_result(self._send(batch))
            return done

    def _finish_delivery(self, delivery: _Delivery) -> bool:
        """Wait for a segment's requests; delete it (setting aside the lines InfluxDB refused),
        or keep it whole for a retry."""
        with delivery.handle:  # closing it releases the lock
            outcomes = [future.result() for future in delivery.futures]
            if any(o.retry for o in outcomes):
                return False  # the whole segment again later: repeated points overwrite themselves
            refused = [item for o in outcomes for item in o.refused]
            if refused:
                reason = next(o.reason for o in outcomes if o.refused)
                self._set_aside(refused, reason, "rejected_points")
            self.spool.delete(delivery.segment)
            with self._stats_lock:
                self.stats["delivered"] += delivery.lines - len(refused)
                self.stats["last_delivery"] = time.time()
        return True

    def _batches(self, lines: list[bytes]) -> list[list[bytes]]:
        """At most batch_size lines each; a segment of 2 * PARALLEL_MIN_LINES or more goes as two
        requests at once (or more, for a segment an older, larger batch size left), so InfluxDB
        parses on both cores while this process compresses the next batch."""
        size = self.batch_size
        if len(lines) >= 2 * PARALLEL_MIN_LINES:
            size = min(size, -(-len(lines) // SENDERS))
        return [lines[i : i + size] for i in range(0, len(lines), size)]

    def _send(self, lines: list[bytes], splitting: bool = False) -> _Sent:
        """Post a batch; when InfluxDB refuses it as invalid, send each half on its own, down to
        single lines, so only the refused lines are set aside. Re-sent points that InfluxDB had
        already taken (a partial write) overwrite themselves: their timestamps are unique. Only
        the first refusal is logged; the set-aside says how many lines it came to."""
        posted = self._post(lines, quiet=splitting)
        if posted.outcome != "invalid":
            return _Sent(retry=posted.outcome == "retry", refused=[])
        if len(lines) == 1:
            return _Sent(retry=False, refused=lines, reason=posted.message)
        middle = len(lines) // 2
        first, second = self._send(lines[:middle], True), self._send(lines[middle:], True)
        return _Sent(retry=first.retry or second.retry, refused=first.refused + second.refused,
                     reason=first.reason or second.reason)

    def _post(self, lines: list[bytes], quiet: bool = False) -> Posted:
        posted = self._influx.post(gzip.compress(b"\n".join(lines), GZIP_LEVEL))
        if posted.outcome == "ok":
            with self._stats_lock:
                self._backoff = 0.0
            return posted
        if not (quiet and posted.outcome == "invalid"):
            self._note_error(posted.message[:300])
        if posted.outcome == "retry":
            self._start_backoff()
        return posted

    def _note_error(self, message: str) -> None:
        with self._stats_lock:
            self.stats["write_errors"] += 1
            self.stats["last_error"] = message
        log.warning("analytics write failed: %s", message)

    def _start_backoff(self) -> None:
        with self._stats_lock:
            self._backoff = min(MAX_BACKOFF, max(0.5, self._backoff * 2))
            self._backoff_until = time.monotonic() + self._backoff

    def _set_aside(self, lines: list[bytes], reason: str, counter: str) -> None:
        if not lines:
            return
        target = self.spool.set_aside(lines, reason)
        with self._stats_lock:
            self.stats[counter] += len(lines)
        log.warning("analytics: %d point(s) set aside in %s: %s", len(lines), target, reason[:200])

    # -- health and shutdown ------------------------------------------------------------------
    def reachable(self, max_age: float = 2.0) -> bool:
        checked, ok = self._ping_cache
        if time.monotonic() - checked > max_age:
            ok = self._influx.ping()
            self._ping_cache = (time.monotonic(), ok)
        return ok

    def health(self) -> dict[str, Any]:
        with self._lock:
            buffered = len(self._buffer)
        with self._stats_lock:
            stats = dict(self.stats)
        return {
            "pid": os.getpid(),
            "buffered": buffered,
            "spool_segments": len(self.spool.pending()),
            "spool_bytes": self.spool.size(),
            "spool_max_bytes": self.spool_max_bytes,
            "set_aside_segments": self.spool.set_aside_count(),
            **stats,
        }

    def close(self, timeout: float = 10.0) -> None:
        """Stop both threads, commit what is buffered and deliver it while InfluxDB answers."""
        self._stop.set()
        self._wake.set()
        self._committed.set()
        self._thread.join(timeout=timeout)
        self._deliverer.join(timeout=timeout)
        self.commit()
        self._backoff_until = 0.0
        self.deliver(deadline=time.monotonic() + timeout)
        self._senders.shutdown(wait=True)
        self._influx.close()
        os.close(self._slot_fd)
