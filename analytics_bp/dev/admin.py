"""What only the tests and the benchmark ask of InfluxDB, on top of the product's InfluxAdmin."""

from __future__ import annotations

from typing import Any

from analytics_bp.influx import InfluxAdmin


class Admin(InfluxAdmin):
    def delete_bucket(self, name: str) -> None:
        api = self.client.buckets_api()
        bucket = api.find_bucket_by_name(name)
        if bucket is not None:
            api.delete_bucket(bucket)

    def delete_points(self, bucket: str, start: str, stop: str) -> None:
        """Delete every point of `bucket` in [start, stop] (RFC3339), as retention would."""
        self.client.delete_api().delete(start, stop, "", bucket=bucket, org=self.org)

    def bucket_retention(self, name: str) -> int | None:
        bucket = self.client.buckets_api().find_bucket_by_name(name)
        if bucket is None:
            return None
        return int(bucket.retention_rules[0].every_seconds) if bucket.retention_rules else 0

    def bucket_shard_group(self, name: str) -> int:
        bucket = self.client.buckets_api().find_bucket_by_name(name)
        return int(bucket.retention_rules[0].shard_group_duration_seconds or 0)

    def drop_with_rollups(self, bucket: str) -> None:
        """Delete a raw bucket, its rollup buckets and its tasks (what `setup` created)."""
        for suffix in ("", "_1h", "_1d", "_1mo"):
            self.delete_bucket(bucket + suffix)
        for task in self.tasks(prefix=bucket + "_"):
            self.client.tasks_api().delete_task(task["id"])

    def run_task(self, name: str, scheduled_for: str, timeout: float = 60) -> dict[str, Any]:
        """Run a task now as if scheduled at `scheduled_for` (RFC3339) and wait for the result."""
        return self.run_tasks([(name, scheduled_for)], timeout)[0]
