"""Where a dashboard query's time goes today: InfluxDB, the client's parsing, or our engine.

    INFLUXD=... .venv/bin/python bench/query_time_split.py        (BENCH_RAW_POINTS, default 1200000)

Writes and rolls up the bench month as `make bench` does (bench/rollup_query.py), then sends each
of the dashboard's queries (bench/stats_api.py) through the real app, recording every Flux query
the engine sends. Each recorded Flux query is replayed three ways: as CSV text only
(`query_raw`: InfluxDB's work and the transfer), parsed into records as the engine reads them
(`query`), and with Flux's query profiler (InfluxDB's own compile and execute time). The rest of
a request's time is the app's: token check, parsing, planning, merging, JSON.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rollup_query
import stats_api
import throwaway

from analytics_bp import create_app
from analytics_bp.dev.admin import Admin
from analytics_bp.influx import InfluxAdmin, InfluxTarget

POINTS = int(os.environ.get("BENCH_RAW_POINTS", "1200000").split(",")[0])
REPEAT = 7
VERBOSE = os.environ.get("SPLIT_VERBOSE") == "1"  # also each Flux query: what it reads, its time
T0 = time.monotonic()


def progress(message: str) -> None:
    print(f"[split {time.monotonic() - T0:5.0f}s] {message}", flush=True)


def median_ms(call: Callable[[], Any]) -> float:
    call()
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def recorded_queries(app: Any, path: str, body: dict[str, Any] | None,
                     headers: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """The Flux queries one request sends (the engine's reader, wrapped for this one call)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    original = InfluxAdmin.query

    def recording(self: InfluxAdmin, flux: str, params: dict[str, Any] | None = None) -> Any:
        seen.append((flux, dict(params or {})))
        return original(self, flux, params)

    InfluxAdmin.query = recording  # type: ignore[method-assign]
    try:
        client = app.test_client()
        resp = client.post(path, json=body, headers=headers) if body else client.get(path, headers=headers)
        if resp.status_code != 200:
            raise RuntimeError(f"{path}: {resp.status_code} {resp.get_data(as_text=True)[:200]}")
    finally:
        InfluxAdmin.query = original  # type: ignore[method-assign]
    return seen


def _reads(flux: str, params: dict[str, Any]) -> str:
    """Which bucket and range one Flux query reads, in a line."""
    bucket = next((str(v) for k, v in params.items() if isinstance(v, str) and v.startswith("bench")), "?")
    span = {k: str(v)[:16] for k, v in params.items() if k in ("start", "stop", "rollup_until", "since")}
    first = next((ln.strip() for ln in flux.splitlines() if "from(" in ln), flux.splitlines()[0])[:60]
    return f"{bucket} {span} {first}"


def raw_csv(admin: Admin, flux: str, params: dict[str, Any]) -> bytes:
    """The answer as InfluxDB sends it, unparsed."""
    return bytes(admin.client.query_api().query_raw(flux, org=admin.org, params=params).read())


def profiled_ms(admin: Admin, flux: str, params: dict[str, Any]) -> tuple[float, float]:
    """(compile, execute) ms of one run, as Flux's query profiler reports them."""
    lines = flux.splitlines()
    imports = [ln for ln in lines if ln.startswith("import ")]  # imports come first in Flux
    rest = [ln for ln in lines if not ln.startswith("import ")]
    text = "\n".join([*imports, 'import "profiler"', 'option profiler.enabledProfilers = ["query"]',
                      *rest])
    tables = admin.client.query_api().query(text, org=admin.org, params=params)
    for table in tables:
        for record in table.records:
            if record.values.get("_measurement") == "profiler/query":
                return (record.values.get("CompileDuration", 0) / 1e6,
                        record.values.get("ExecuteDuration", 0) / 1e6)
    return 0.0, 0.0


def main() -> None:
    with throwaway.influxd("split-") as (tmp, creds, admin):
        bucket = f"bench_rollup_{POINTS}"
        admin.ensure_bucket(bucket, 0)
        rollup_query.measure(admin, InfluxTarget(creds.url, creds.org, creds.token, bucket), POINTS, progress)
        app = create_app(**creds.as_env(), ANALYTICS_BUCKET=bucket, ANALYTICS_STATE_DIR=str(Path(tmp) / "s"),
                         ANALYTICS_PERMITTED_DOMAINS="a.example,b.example,c.example",
                         ANALYTICS_DASHBOARD_TOKEN=stats_api.TOKEN, ANALYTICS_RAW_RETENTION="0",
                         ANALYTICS_AGENT_EXTRAS="outbound,downloads,engagement")
        headers = {"Authorization": f"Bearer {stats_api.TOKEN}"}
        client = app.test_client()
        progress(f"splitting the dashboard's queries, medians of {REPEAT}")
        print(f"{'query':<28} {'request':>8} {'flux':>5} {'csv':>7} {'parsed':>7} {'compile':>8} "
              f"{'execute':>8} {'app':>7}   (ms)")
        for name, path, body in stats_api.dashboard_queries(stats_api.SITE):
            request = median_ms(lambda p=path, b=body: client.post(p, json=b, headers=headers) if b
                                else client.get(p, headers=headers))
            sent = recorded_queries(app, path, body, headers)
            csv = sum(median_ms(lambda f=f, p=p: raw_csv(admin, f, p)) for f, p in sent)
            parsed = sum(median_ms(lambda f=f, p=p: admin.query(f, p)) for f, p in sent)
            compile_ms = execute_ms = 0.0
            parts = []
            for f, p in sent:
                c, e = profiled_ms(admin, f, p)
                compile_ms, execute_ms = compile_ms + c, execute_ms + e
                parts.append(f"    {e:7.1f} ms execute: {_reads(f, p)}")
            print(f"{name:<28} {request:>8.1f} {len(sent):>5} {csv:>7.1f} {parsed:>7.1f} {compile_ms:>8.1f} "
                  f"{execute_ms:>8.1f} {request - parsed:>7.1f}")
            if VERBOSE:
                print("\n".join(parts))
        app.extensions["analytics"].close()


if __name__ == "__main__":
    main()
