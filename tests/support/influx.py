"""The session's real influxd, fresh buckets, and delivering what an app holds."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask
from influxdb_client import InfluxDBClient

from analytics_bp import rollups
from analytics_bp.dev.admin import Admin
from analytics_bp.dev.localinflux import InfluxCredentials, LocalInflux


@dataclass
class Influx:
    creds: InfluxCredentials
    client: InfluxDBClient
    admin: Admin
    server: LocalInflux | None

    def query(self, flux: str, **params: Any) -> list[dict[str, Any]]:
        return self.admin.query(flux, params=params or None)

    def raw_rows(self, bucket: str) -> list[dict[str, Any]]:
        return self.query(
            'from(bucket: b) |> range(start: 0) |> drop(columns: ["_start", "_stop"])', b=bucket
        )


@contextmanager
def scratch_bucket(influx: Influx, prefix: str = "t") -> Iterator[str]:
    """A fresh raw bucket (and its rollup buckets, if a test creates them), deleted afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    influx.admin.ensure_bucket(name, 0, rollups.raw_shard_group_seconds(0))  # as setup makes it
    try:
        yield name
    finally:
        influx.admin.drop_with_rollups(name)


def flush(app: Flask) -> None:
    """Deliver everything the app's sink holds, waiting for its delivery thread's too, and for
    the writer's golive decision (made in the background when a writer starts)."""
    sink = app.extensions["analytics"].sink()
    assert sink.drain(), "spool not empty after 30 s"
    deadline = time.monotonic() + 10
    while any(t.name == "analytics-golive" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the golive decision took more than 10 s"
        time.sleep(0.02)
    assert sink.drain(), "spool not empty after 30 s"


def random_token() -> str:
    return secrets.token_hex(8)
