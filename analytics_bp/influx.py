"""The only importer of `influxdb_client`: write requests, and the admin calls setup, the CLI, the
Stats API and `make run` need.

Why one module: the client is a large dependency with threads of its own and several ways to write
(the batching WriteApi keeps points only in memory and drops them after its retries; see sink.py);
keeping every use here means the rest of the package depends on two small classes, whatever the
client does next.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from influxdb_client import Dialect, InfluxDBClient, Query
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from influxdb_client.service.query_service import QueryService
from influxdb_client.service.write_service import WriteService
from urllib3.exceptions import HTTPError as Urllib3Error

from .settings import InfluxTarget

__all__ = ["InfluxAdmin", "InfluxTarget", "InfluxWriter", "Posted"]

INVALID = (400, 413, 422)  # InfluxDB refuses the lines themselves: retrying cannot help


@dataclass(frozen=True)
class Posted:
    """What one write request came to: "ok", "retry" (outage, overload) or "invalid", and why."""

    outcome: str
    message: str = ""


class InfluxWriter:
    """Posts line protocol that is already gzipped, as it is (the client's own gzip is fixed at
    level 9, five times slower than the level 1 the sink uses)."""

    def __init__(self, target: InfluxTarget, timeout_ms: int = 10_000) -> None:
        self.target = target
        self._client = InfluxDBClient(url=target.url, token=target.token, org=target.org,
                                      timeout=timeout_ms)
        self._writes = WriteService(self._client.api_client)

    def post(self, gzipped: bytes) -> Posted:
        try:
            self._writes.post_write(
                org=self.target.org, bucket=self.target.bucket, body=gzipped,
                precision=WritePrecision.NS, content_encoding="gzip",
                content_type="text/plain; charset=utf-8",
            )
        except ApiException as err:
            kind = "invalid" if err.status in INVALID else "retry"
            return Posted(kind, f"InfluxDB answered {err.status}: {(err.body or '')[:1000]}")
        except (Urllib3Error, OSError) as err:
            return Posted("retry", f"InfluxDB unreachable: {type(err).__name__}: {err}"[:300])
        return Posted("ok")

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except Exception:
            return False

    def close(self) -> None:
        self._client.close()


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

    def ensure_bucket(self, name: str, retention_seconds: int, shard_group_seconds: int = 0) -> str:
        """Create the bucket, or bring its retention (and shard group duration, when one is given;
        0 is InfluxDB's default for the retention) to the configured value. Returns its state."""
        from influxdb_client import BucketRetentionRules

        api = self.client.buckets_api()
        rule = BucketRetentionRules(type="expire", every_seconds=retention_seconds)
        if shard_group_seconds:
            rule.shard_group_duration_seconds = shard_group_seconds
        existing = api.find_bucket_by_name(name)
        if existing is None:
            api.create_bucket(bucket_name=name, retention_rules=[rule], org=self.org)
            return "created"
        current = existing.retention_rules[0] if existing.retention_rules else None
        every = current.every_seconds if current else 0
        shard = (current.shard_group_duration_seconds or 0) if current else 0
        if every != retention_seconds or (shard_group_seconds and shard != shard_group_seconds):
            existing.retention_rules = [rule]
            api.update_bucket(existing)
            return "updated"
        return "unchanged"

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
                    # 404: not started yet. 500: influxd 2.9.1 panics (nil pointer) when asked
                    # for a run at the moment it moves from running to finished; seen once in
                    # 360 queued hourly runs of `make bench`. Both: ask again.
                    if err.status not in (404, 500):
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

    def mark_exists(self, name: str, buckets: list[str]) -> bool:
        """Whether a `mark` point called `name` is in any of `buckets` (the first must exist; a
        rollup bucket not created yet holds none)."""
        flux = ('from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement == "mark" '
                'and r._field == "name" and r._value == n) |> limit(n: 1)')
        for index, bucket in enumerate(buckets):
            try:
                if self.query(flux, {"b": bucket, "n": name}):
                    return True
            except ApiException as err:
                if index == 0 or err.status != 404:
                    raise
        return False

    def query(self, flux: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows as dicts, without Flux's bookkeeping columns `result` and `table`."""
        tables = self.client.query_api().query(flux, org=self.org, params=params or {})
        return [
            {k: v for k, v in record.values.items() if k not in ("result", "table")}
            for table in tables
            for record in table.records
        ]

    def write_lines(self, bucket: str, lines: list[str]) -> None:
        """Write a few line-protocol lines (nanosecond stamps) and wait until InfluxDB has them.
        The collector's points go through InfluxWriter and the sink instead; this is for the
        marks `rollups.rerun` writes before queuing runs."""
        if lines:
            WriteService(self.client.api_client).post_write(
                org=self.org, bucket=bucket, body="\n".join(lines).encode(),
                precision=WritePrecision.NS, content_type="text/plain; charset=utf-8")

    def run_flux_as_of(self, flux: str, now: datetime) -> None:
        """Run a task's Flux once as a query with `now()` = `now`, and wait for it.

        Why: a manual task run scheduled in the future waits for that time, so a test or bench
        that rolls up the hour still under way (beacons stamped seconds ago) runs the shipped
        task text itself, as of the end of that hour."""
        body = Query(query=flux, now=now, dialect=Dialect(header=False, annotations=[]))
        response = QueryService(self.client.api_client).post_query(
            org=self.org, query=body, async_req=False, _preload_content=False)
        response.read()  # the whole answer: every `to()` has written; an error raised ApiException

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except Exception:
            return False
