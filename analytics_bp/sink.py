"""The only importer of `influxdb_client`: durable, batched delivery of line protocol to InfluxDB.

Path of a point: `write()` appends to an in-memory buffer (the only work on the request path).
A flusher thread, once per ANALYTICS_FLUSH_INTERVAL (or sooner when a batch is full), group-commits
the buffer to spool segments (write, fsync, rename) of at most two batches each. A separate
delivery thread sends pending segments oldest first, gzip, ANALYTICS_BATCH_SIZE lines per request,
two requests in flight, and deletes each segment once InfluxDB took it.

Why two threads: a commit never waits for InfluxDB, so a slow or large delivery cannot stretch the
group-commit interval (the kill -9 loss bound) and InfluxDB parses one segment while the next is
committed. Why small segments: memory per delivery stays bounded after a long outage, and the
next segment's requests are sent while the previous one's finish.

Why not influxdb-client's batching WriteApi: it keeps points only in memory, drops a batch after its
retries and loses everything on a crash. With the spool, an outage only grows the spool (beacons
get 503 when it is full), a hard kill loses at most one flush interval, and any worker (or the next
start) delivers segments a dead worker left behind. Timestamps are unique (points.UniqueClock), so
a segment delivered twice overwrites itself.

No single line can stop the others: a line UTF-8 cannot encode is set aside at commit, and a batch
InfluxDB refuses as invalid (400/413/422) is split in halves and re-sent until only the refused
lines are left; those alone go to `rejected/` with the reason, the rest is delivered.

The sink is created lazily per process (keyed on the pid), so its thread is born after gunicorn's
fork, with or without --preload; `close()` (gunicorn's worker_exit) commits and delivers the rest.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
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

from influxdb_client import InfluxDBClient
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from influxdb_client.service.write_service import WriteService
from urllib3.exceptions import HTTPError as Urllib3Error

from .points import UniqueClock, counter_lines

log = logging.getLogger("analytics.sink")

CounterKey = tuple[str, tuple[tuple[str, str], ...]]
MAX_BACKOFF = 30.0
SENDERS = 2  # write requests in flight at once
PARALLEL_MIN_LINES = 1000
SEGMENTS_IN_FLIGHT = 2  # the next segment is read and sent while the previous one finishes
GZIP_LEVEL = 1
SLOTS = 1000


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


@dataclass(frozen=True)
class InfluxTarget:
    url: str
    org: str
    token: str
    bucket: str


def claim_slot(directory: Path) -> tuple[int, int]:
    """Exclusively lock one of SLOTS slot files; the slot number makes timestamps host-unique."""
    directory.mkdir(parents=True, exist_ok=True)
    start = os.getpid() % SLOTS
    for i in range(SLOTS):
        slot = (start + i) % SLOTS
        fd = os.open(directory / f"{slot:03d}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return slot, fd
        except OSError:
            os.close(fd)
    raise RuntimeError(f"all {SLOTS} writer slots in {directory} are taken")


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
    ) -> None:
        self.target = target
        self.spool = Path(spool_dir)
        self.rejected_dir = self.spool / "rejected"
        self.rejected_dir.mkdir(parents=True, exist_ok=True)
        self.spool_max_bytes = spool_max_bytes
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.slot, self._slot_fd = claim_slot(self.spool / "slots")
        self.clock = UniqueClock(self.slot)
        # The body is gzipped here (level 1: on a loopback or LAN the CPU, not the bytes, is the
        # cost; the client's own gzip is fixed at level 9, five times slower) and posted as it is.
        self._client = InfluxDBClient(url=target.url, token=target.token, org=target.org,
                                      timeout=timeout_ms)
        self._writes = WriteService(self._client.api_client)
        self._senders = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="analytics-send")
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._buffer: list[str] = []
        self._counters: Counter[CounterKey] = Counter()
        self._wake = threading.Event()
        self._committed = threading.Event()
        self._stop = threading.Event()
        self._seq = 0
        self._stats_lock = threading.Lock()
        self.stats: dict[str, Any] = {
            "accepted": 0, "delivered": 0, "rejected_points": 0, "unencodable_points": 0,
            "write_errors": 0, "last_error": "", "last_delivery": 0.0,
        }
        self._spool_bytes = self._measure_spool()
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
        with self._lock:
            self._buffer.append(line)
            full = len(self._buffer) >= self.batch_size
        if full:
            self._wake.set()

    def add_count(self, key: CounterKey, n: int = 1) -> None:
        """Aggregate a counter in memory; one point per key and flush (e.g. rejected beacons)."""
        with self._lock:
            self._counters[key] += n

    @property
    def accepting(self) -> bool:
        """False when the spool is full: the caller should answer 503 rather than drop data."""
        return self._spool_bytes < self.spool_max_bytes

    # -- flusher ------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                if self.commit():
                    self._committed.set()
            except Exception:  # the flusher must survive; only a commit the disk refused is lost
                log.exception("analytics sink commit failed")

    def _deliver_loop(self) -> None:
        """Deliver after each commit, and once per flush interval for retries and orphans."""
        while not self._stop.is_set():
            self._committed.wait(self.flush_interval)
            self._committed.clear()
            try:
                self.deliver()
            except Exception:  # the deliverer must survive anything; the spool keeps the data
                log.exception("analytics sink delivery failed")

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
            for i in range(0, len(lines), size):
                self._write_segment(lines[i : i + size])
            self._fsync_dir()
        self._bump("accepted", len(lines))
        return len(lines)

    def _encode(self, lines: list[str]) -> bytes:
        """The segment's bytes; a line UTF-8 cannot encode is set aside alone, never the batch."""
        text = "\n".join(lines) + "\n"
        try:
            return text.encode()
        except UnicodeEncodeError:
            pass
        good: list[bytes] = []
        bad: list[bytes] = []
        for item in lines:
            try:
                good.append(item.encode())
            except UnicodeEncodeError:
                bad.append(item.encode("utf-8", "backslashreplace"))
        self._set_aside_lines(bad, "unencodable: not valid unicode", "unencodable_points")
        return b"".join(item + b"\n" for item in good)

    def _write_segment(self, lines: list[str]) -> None:
        data = self._encode(lines)
        if not data:
            return
        self._seq += 1
        name = f"{time.time_ns():020d}-{self.slot:03d}-{self._seq:08d}.lp"
        tmp = self.spool / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, self.spool / name)
        self._spool_bytes += len(data)

    def _fsync_dir(self) -> None:
        fd = os.open(self.spool, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def pending_segments(self) -> list[Path]:
        return sorted(self.spool.glob("*.lp"))

    def deliver(self, deadline: float | None = None) -> None:
        """Send pending segments oldest first, two at a time; stop at the first outage and back off.

        The next segment's requests are queued while the previous segment's finish, so InfluxDB
        always has work; a segment is deleted only once all of its requests succeeded.
        """
        if time.monotonic() < self._backoff_until:
            return
        in_flight: deque[_Delivery] = deque()
        failed = False
        try:
            for segment in self.pending_segments():
                if failed or (deadline is not None and time.monotonic() > deadline):
                    break
                delivery = self._start_delivery(segment)
                if delivery is not None:
                    in_flight.append(delivery)
                if len(in_flight) >= SEGMENTS_IN_FLIGHT:
                    failed = not self._finish_delivery(in_flight.popleft())
            while in_flight:
                self._finish_delivery(in_flight.popleft())
        finally:
            for delivery in in_flight:  # only after an unexpected error: unlock, retry later
                delivery.handle.close()
            self._spool_bytes = self._measure_spool()

    def drain(self, timeout: float = 30.0) -> bool:
        """Commit, then deliver until the spool is empty; True when it is.

        Unlike `deliver()`, this also waits for segments another deliverer (this process's delivery
        thread or another worker) holds, so on return everything accepted so far is in InfluxDB.
        """
        self.commit()
        deadline = time.monotonic() + timeout
        while True:
            self.deliver(deadline)
            if not self.pending_segments():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def _start_delivery(self, segment: Path) -> _Delivery | None:
        """Lock the segment and queue its requests; None when another deliverer has it."""
        try:
            handle = segment.open("rb")
        except FileNotFoundError:
            return None  # another worker delivered it
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            handle.close()
            if err.errno in (errno.EAGAIN, errno.EACCES):
                return None  # another worker (or this process's other deliverer) has it
            raise
        if os.fstat(handle.fileno()).st_nlink == 0:
            handle.close()
            return None  # delivered and unlinked while we waited
        lines = handle.read().splitlines()  # bytes: sent as stored, never decoded
        futures = [self._senders.submit(self._send, batch) for batch in self._batches(lines)]
        return _Delivery(segment, handle, len(lines), futures)

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
                self._set_aside_lines(refused, reason, "rejected_points")
            delivery.segment.unlink(missing_ok=True)
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
        outcome, reason = self._post(lines, quiet=splitting)
        if outcome != "invalid":
            return _Sent(retry=outcome == "retry", refused=[])
        if len(lines) == 1:
            return _Sent(retry=False, refused=lines, reason=reason)
        middle = len(lines) // 2
        first, second = self._send(lines[:middle], True), self._send(lines[middle:], True)
        return _Sent(retry=first.retry or second.retry, refused=first.refused + second.refused,
                     reason=first.reason or second.reason)

    def _post(self, lines: list[bytes], quiet: bool = False) -> tuple[str, str]:
        """One write request: ("ok" | "retry" | "invalid", InfluxDB's reason when invalid)."""
        try:
            body = gzip.compress(b"\n".join(lines), GZIP_LEVEL)
            self._writes.post_write(
                org=self.target.org, bucket=self.target.bucket, body=body, precision=WritePrecision.NS,
                content_encoding="gzip", content_type="text/plain; charset=utf-8",
            )
        except ApiException as err:
            invalid = err.status in (400, 413, 422)
            if not (quiet and invalid):
                self._note_error(f"InfluxDB answered {err.status}: {(err.body or '')[:300]}")
            if invalid:
                return "invalid", f"{err.status} {(err.body or '')[:1000]}"
            self._start_backoff()
            return "retry", ""
        except (Urllib3Error, OSError) as err:
            self._note_error(f"InfluxDB unreachable: {type(err).__name__}: {err}"[:300])
            self._start_backoff()
            return "retry", ""
        self._backoff = 0.0
        return "ok", ""

    def _bump(self, counter: str, n: int) -> None:
        with self._stats_lock:
            self.stats[counter] += n

    def _note_error(self, message: str) -> None:
        with self._stats_lock:
            self.stats["write_errors"] += 1
            self.stats["last_error"] = message
        log.warning("analytics write failed: %s", message)

    def _start_backoff(self) -> None:
        self._backoff = min(MAX_BACKOFF, max(0.5, self._backoff * 2))
        self._backoff_until = time.monotonic() + self._backoff

    def _set_aside_lines(self, lines: list[bytes], reason: str, counter: str) -> None:
        """Keep refused lines in `rejected/` (fsynced, with the reason beside them) and count them."""
        if not lines:
            return
        name = f"{time.time_ns():020d}-{self.slot:03d}-{threading.get_ident() % 10**6:06d}.lp"
        target = self.rejected_dir / name
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"".join(item + b"\n" for item in lines))
            os.fsync(fd)
        finally:
            os.close(fd)
        target.with_suffix(".reason").write_text(reason + "\n")
        self._bump(counter, len(lines))
        log.warning("analytics: %d point(s) set aside in %s: %s", len(lines), target, reason[:200])

    def _measure_spool(self) -> int:
        total = 0
        for segment in self.spool.glob("*.lp"):
            with contextlib.suppress(FileNotFoundError):
                total += segment.stat().st_size
        return total

    # -- health and shutdown ------------------------------------------------------------------
    def reachable(self, max_age: float = 2.0) -> bool:
        checked, ok = self._ping_cache
        if time.monotonic() - checked > max_age:
            try:
                ok = bool(self._client.ping())
            except Exception:
                ok = False
            self._ping_cache = (time.monotonic(), ok)
        return ok

    def health(self) -> dict[str, Any]:
        segments = self.pending_segments()
        with self._lock:
            buffered = len(self._buffer)
        return {
            "pid": os.getpid(),
            "buffered": buffered,
            "spool_segments": len(segments),
            "spool_bytes": self._measure_spool(),
            "spool_max_bytes": self.spool_max_bytes,
            "set_aside_segments": len(list(self.rejected_dir.glob("*.lp"))),
            **self._stats_snapshot(),
        }

    def _stats_snapshot(self) -> dict[str, Any]:
        with self._stats_lock:
            return dict(self.stats)

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
        self._client.close()
        os.close(self._slot_fd)


class InfluxAdmin:
    """Buckets, tasks and queries: what setup, the CLI and the health check need."""

    def __init__(self, url: str, org: str, token: str, timeout_ms: int = 30_000) -> None:
        self.org = org
        self.client = InfluxDBClient(url=url, token=token, org=org, timeout=timeout_ms)

    def close(self) -> None:
        self.client.close()

    def org_id(self) -> str:
        orgs = self.client.organizations_api().find_organizations(org=self.org)
        return str(orgs[0].id)

    def ensure_bucket(self, name: str, retention_seconds: int) -> str:
        """Create the bucket, or bring its retention to the configured value. Returns its state."""
        from influxdb_client import BucketRetentionRules

        api = self.client.buckets_api()
        rules = [BucketRetentionRules(type="expire", every_seconds=retention_seconds)]
        existing = api.find_bucket_by_name(name)
        if existing is None:
            api.create_bucket(bucket_name=name, retention_rules=rules, org=self.org)
            return "created"
        current = existing.retention_rules[0].every_seconds if existing.retention_rules else 0
        if current != retention_seconds:
            existing.retention_rules = rules
            api.update_bucket(existing)
            return "updated"
        return "unchanged"

    def delete_bucket(self, name: str) -> None:
        api = self.client.buckets_api()
        bucket = api.find_bucket_by_name(name)
        if bucket is not None:
            api.delete_bucket(bucket)

    def bucket_retention(self, name: str) -> int | None:
        bucket = self.client.buckets_api().find_bucket_by_name(name)
        if bucket is None:
            return None
        return int(bucket.retention_rules[0].every_seconds) if bucket.retention_rules else 0

    def upsert_task(self, name: str, flux: str) -> str:
        """Create the task, update it when its text changed, leave an identical one alone."""
        from influxdb_client import TaskCreateRequest

        api = self.client.tasks_api()
        found = [t for t in api.find_tasks(name=name) if t.name == name]
        if not found:
            api.create_task(
                task_create_request=TaskCreateRequest(
                    flux=flux, org_id=self.org_id(), status="active", description=name
                )
            )
            return "created"
        task = found[0]
        if task.flux == flux:
            return "unchanged"
        task.flux = flux
        api.update_task(task)
        return "updated"

    def tasks(self, prefix: str = "") -> list[dict[str, Any]]:
        out = []
        for task in self.client.tasks_api().find_tasks():
            if task.name.startswith(prefix):
                out.append({
                    "id": task.id, "name": task.name, "status": task.status,
                    "every": task.every, "offset": task.offset,
                    "last_run": task.latest_completed, "last_status": task.last_run_status,
                    "last_error": task.last_run_error,
                })
        return sorted(out, key=lambda t: t["name"])

    def run_task(self, name: str, scheduled_for: str, timeout: float = 60) -> dict[str, Any]:
        """Run a task now as if scheduled at `scheduled_for` (RFC3339) and wait for the result."""
        api = self.client.tasks_api()
        task = next(t for t in api.find_tasks(name=name) if t.name == name)
        run = api.run_manually(task.id, scheduled_for=scheduled_for)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                current = api.get_run(task.id, run.id)
            except ApiException as err:
                if err.status != 404:  # a queued run can be briefly unknown while it starts
                    raise
                time.sleep(0.1)
                continue
            if current.status in ("success", "failed", "canceled"):
                logs = [entry.message for entry in api.get_run_logs(task.id, run.id)]
                return {"status": current.status, "logs": logs}
            time.sleep(0.1)
        raise TimeoutError(f"task {name} run did not finish in {timeout}s")

    def run_tasks(self, runs: list[tuple[str, str]], timeout: float = 600) -> list[dict[str, Any]]:
        """Queue many runs (task name, RFC3339 scheduled time) at once, then wait for all of them:
        InfluxDB works through a queue far faster than one run started after another."""
        api = self.client.tasks_api()
        ids = {name: next(t.id for t in api.find_tasks(name=name) if t.name == name)
               for name in {name for name, _ in runs}}
        queued = [(ids[name], api.run_manually(ids[name], scheduled_for=at).id) for name, at in runs]
        deadline = time.monotonic() + timeout
        results: list[dict[str, Any]] = []
        for task_id, run_id in queued:
            while True:
                try:
                    current = api.get_run(task_id, run_id)
                except ApiException as err:
                    if err.status != 404:
                        raise
                    current = None
                if current is not None and current.status in ("success", "failed", "canceled"):
                    logs = [] if current.status == "success" else [
                        e.message for e in api.get_run_logs(task_id, run_id)]
                    results.append({"status": current.status, "logs": logs})
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(queued) - len(results)} task runs did not finish")
                time.sleep(0.05)
        return results

    def query(self, flux: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows as dicts, without Flux's bookkeeping columns `result` and `table`."""
        tables = self.client.query_api().query(flux, org=self.org, params=params or {})
        return [
            {k: v for k, v in record.values.items() if k not in ("result", "table")}
            for table in tables
            for record in table.records
        ]

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except Exception:
            return False
