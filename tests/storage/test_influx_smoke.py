"""The foundation: a real influxd answers writes from influxdb-client's batching writer, Flux
queries, and tasks created from a .flux file and run manually."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from influxdb_client import Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS, WriteOptions

from analytics_bp.dev.localinflux import LocalInflux, http_json
from analytics_bp.rollups import render
from tests.support.influx import Influx

HERE = Path(__file__).parents[1]  # tests/


def test_server_is_influxdb_2_with_flux(influx: Influx) -> None:
    status, body = http_json("GET", f"{influx.creds.url}/health")
    assert status == 200
    assert isinstance(body, dict) and body["status"] == "pass"
    assert str(body["version"]).lstrip("v").startswith("2.")


def test_batching_writer_points_read_back_exactly(influx: Influx, bucket: str) -> None:
    base = datetime(2026, 1, 2, 3, 0, tzinfo=UTC)
    options = WriteOptions(batch_size=50, flush_interval=10_000)
    with influx.client.write_api(write_options=options) as writer:
        for i in range(120):
            point = (Point("smoke").tag("host", f"h{i % 3}").field("value", i)
                     .time(base.replace(minute=i % 60, second=i // 60), WritePrecision.S))
            writer.write(bucket=bucket, record=point)
    rows = influx.query(
        'from(bucket: b) |> range(start: 2026-01-01T00:00:00Z) '
        '|> filter(fn: (r) => r._measurement == "smoke") |> group(columns: ["host"]) '
        '|> sum() |> group() |> sort(columns: ["host"])', b=bucket)
    expected = {f"h{h}": sum(i for i in range(120) if i % 3 == h) for h in range(3)}
    assert {r["host"]: r["_value"] for r in rows} == expected


def test_task_from_flux_file_runs_manually(influx: Influx, bucket: str) -> None:
    out = bucket + "_1h"
    influx.admin.ensure_bucket(out, 0)
    lines = [f"smoke value={v}i {int(datetime(2026, 1, 2, h, m, tzinfo=UTC).timestamp())}"
             for h, m, v in [(10, 5, 1), (10, 59, 2), (11, 0, 4), (11, 30, 8), (12, 0, 16)]]
    influx.client.write_api(write_options=SYNCHRONOUS).write(bucket=bucket, record="\n".join(lines),
                                    write_precision=WritePrecision.S)
    name = f"{bucket}_smoke"
    flux = render((HERE / "flux" / "smoke_task.flux").read_text(),
                  {"TASK_NAME": name, "RAW_BUCKET": bucket, "OUT_BUCKET": out})
    assert influx.admin.upsert_task(name, flux) == "created"
    assert influx.admin.upsert_task(name, flux) == "unchanged"
    result = influx.admin.run_task(name, "2026-01-02T12:00:00Z")
    assert result["status"] == "success", result["logs"]
    rows = influx.query('from(bucket: b) |> range(start: 0) |> keep(columns: ["_time", "_value"])',
                        b=out)
    got = {r["_time"].isoformat(): r["_value"] for r in rows}
    # 12:00 is outside the run's window [10:00, 12:00): it waits for the next run.
    assert got == {"2026-01-02T10:00:00+00:00": 3, "2026-01-02T11:00:00+00:00": 12}


def test_throwaway_server_leaves_no_process(tmp_path: Path) -> None:
    server = LocalInflux()
    server.start()
    creds = server.onboard()
    pid = server.proc.pid if server.proc else 0
    assert creds.token and creds.url.startswith("http://127.0.0.1:")
    status, _ = http_json("GET", f"{creds.url}/api/v2/buckets", token=creds.token)
    assert status == 200
    server.stop()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert not server.data_dir.exists()


def test_influxd_provider_reuses_cached_binary() -> None:
    env = dict(os.environ)
    env.pop("INFLUXD", None)
    result = subprocess.run([str(HERE.parent / "scripts" / "influxd.sh")], capture_output=True,
                            text=True, timeout=60, env=env, check=True)
    path = result.stdout.strip()
    assert os.access(path, os.X_OK)
    assert "building" not in result.stderr
    version = subprocess.run([path, "version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("InfluxDB v2.")
