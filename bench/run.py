"""`make bench`: the collector against a bare baseline, delivery rate, agent size, rollup speed-up.

Prints progress, then a table, and writes bench/results.json. Uses a throwaway local influxd (or the
server named by INFLUXDB_V2_*), never part of `make test`: figures are ratios measured in one run,
and the noisy ones (HTTP, delivery) are medians of rounds, because the machine's speed drifts.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import capacity
import grafana_panels
import http_load
import ingest
import profile_hot_path
import rollup_query
import stats_api

from analytics_bp.dev import traffic_quality
from analytics_bp.dev.admin import Admin
from analytics_bp.dev.localinflux import InfluxCredentials, LocalInflux
from analytics_bp.influx import InfluxTarget

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
T0 = time.monotonic()
# The rollup's cost is per (domain, page) series and the raw query's per point, so the speed-up
# depends on traffic: it is measured at a small and a busy site's month, both in every run.
RAW_POINTS = [int(n) for n in os.environ.get("BENCH_RAW_POINTS", "1200000,4000000").split(",")]
INGEST_POINTS = int(os.environ.get("BENCH_INGEST_POINTS", "300000"))
HTTP_SECONDS = int(os.environ.get("BENCH_HTTP_SECONDS", "10"))
HTTP_ROUNDS = int(os.environ.get("BENCH_HTTP_ROUNDS", "3"))
INGEST_ROUNDS = int(os.environ.get("BENCH_INGEST_ROUNDS", "3"))


def progress(message: str) -> None:
    print(f"[bench {time.monotonic() - T0:5.0f}s] {message}", flush=True)


def machine() -> dict[str, Any]:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "kernel": platform.release()}


def agent_sizes() -> dict[str, dict[str, int]]:
    out = {}
    for path in sorted((ROOT / "agent_js" / "dist").glob("*.js")):
        data = path.read_bytes()
        out[path.name] = {"bytes": len(data), "gzip_9": len(gzip.compress(data, 9, mtime=0))}
    return out


def http_round(env: dict[str, str], state: Path, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """One baseline run, then one collector run, each under a fresh gunicorn."""
    base = http_load.measure(http_load.server("baseline_app:create_app()", {}, state / f"base{n}.log"),
                             HTTP_SECONDS, progress)
    coll = http_load.measure(http_load.server("analytics_bp:create_app()", env, state / f"coll{n}.log"),
                             HTTP_SECONDS, progress)
    if any(r.non_2xx or r.socket_errors for r in coll.values()):
        raise RuntimeError(f"collector refused beacons; see {state / f'coll{n}.log'}")
    return ({k: v.as_dict() for k, v in base.items()}, {k: v.as_dict() for k, v in coll.items()})


def medians(rounds: list[dict[str, Any]], app: str) -> dict[str, dict[str, float]]:
    """Per phase (peak, half), the median rate and latencies of one app over the rounds."""
    return {phase: {key: round(statistics.median(r[app][phase][key] for r in rounds), 3)
                    for key in ("rate", "p50_ms", "p99_ms")}
            for phase in ("peak", "half")}


def http_comparison(admin: Admin, creds: InfluxCredentials, state: Path) -> dict[str, Any]:
    """Baseline and collector interleaved for HTTP_ROUNDS rounds; medians, so one noisy run
    (the machine's speed drifts by tens of percent) does not decide the figure."""
    bucket = "bench_http"
    admin.ensure_bucket(bucket, 0)
    env = {**creds.as_env(), "ANALYTICS_PERMITTED_DOMAINS": "bench.example", "ANALYTICS_BUCKET": bucket,
           "ANALYTICS_STATE_DIR": str(state / "http")}
    rounds = []
    for n in range(1, HTTP_ROUNDS + 1):
        progress(f"HTTP round {n}/{HTTP_ROUNDS}")
        base, coll = http_round(env, state, n)
        rounds.append({"baseline": base, "collector": coll,
                       "rate_ratio": round(coll["peak"]["rate"] / base["peak"]["rate"], 3)})
    accepted = sum(r["collector"][k]["requests"] - r["collector"][k]["non_2xx"]
                   for r in rounds for k in r["collector"])
    stored = ingest.stored_count(admin, bucket, "pageview")
    # wrk counts only responses it read before its deadline; requests still in flight then (at
    # most one per connection and run) were accepted and stored but not counted.
    in_flight = len(rounds) * len(rounds[0]["collector"]) * http_load.CONNECTIONS
    if not accepted <= stored <= accepted + in_flight:
        raise RuntimeError(f"collector: {accepted} accepted, {stored} stored; see {state}")
    return {"rounds": rounds,
            "median": {app: medians(rounds, app) for app in ("baseline", "collector")},
            "rate_ratio": round(statistics.median(r["rate_ratio"] for r in rounds), 3),
            "accepted_and_stored": stored}


def run(creds: InfluxCredentials, state: Path, server: LocalInflux | None = None) -> dict[str, Any]:
    admin = Admin(creds.url, creds.org, creds.token, timeout_ms=600_000)
    results: dict[str, Any] = {"machine": machine(), "agent": agent_sizes()}
    progress("judging the labelled User-Agent corpora (tests/data/agents), about 75 s")
    results["traffic_quality"] = traffic_quality.report(ROOT / "tests" / "data" / "agents")
    progress("profiling the hot path in-process (pyinstrument)")
    admin.ensure_bucket("bench_profile", 0)
    results["profile"] = profile_hot_path.measure(creds.as_env(), "bench_profile", 5000,
                                                  BENCH / "profile.txt")
    results["http"] = http_comparison(admin, creds, state)
    progress(f"delivering {INGEST_POINTS:,} points through one sink")
    admin.ensure_bucket("bench_ingest", 0)
    results["ingest"] = ingest.measure(
        admin, InfluxTarget(creds.url, creds.org, creds.token, "bench_ingest"), INGEST_POINTS,
        time.time_ns(), INGEST_ROUNDS, progress)
    results["rollup_query"] = [
        rollup_query.measure(admin, InfluxTarget(creds.url, creds.org, creds.token, f"bench_rollup_{n}"),
                             n, progress)
        for n in RAW_POINTS]
    biggest = max(RAW_POINTS)
    results["stats_api"] = stats_api.measure(creds, f"bench_rollup_{biggest}", str(state / "stats"),
                                             biggest, progress)
    if server is not None and server.proc is not None:  # needs influxd's files and process here
        task_s = next(q["task_s_per_day"] for q in results["rollup_query"] if q["raw_points"] == biggest)
        results["capacity"] = capacity.measure(creds, admin, server.data_dir, server.proc.pid,
                                               f"bench_rollup_{biggest}", biggest, task_s, state, progress)
        results["grafana"] = grafana_panels.measure(admin, f"bench_rollup_{biggest}", progress)
    results["stats_api_12mo"] = stats_api.measure(creds, f"bench_rollup_{biggest}", str(state / "stats12"),
                                                  biggest, progress, months=12)
    admin.close()
    return results


def table(r: dict[str, Any]) -> str:
    h, ing = r["http"], r["ingest"]
    b, c = h["median"]["baseline"], h["median"]["collector"]
    each = ", ".join(f'{x["rate_ratio"]:.2f}' for x in h["rounds"])
    half_p99 = ", ".join(str(x["collector"]["half"]["p99_ms"]) for x in h["rounds"])
    rows = [
        ("machine", f'{r["machine"]["cpus"]} cpus, {r["machine"]["cpu"]}', ""),
        (f'medians of {len(h["rounds"])} interleaved rounds', "", ""),
        ("baseline Flask 204, max rate", f'{b["peak"]["rate"]:.0f} req/s',
         f'p50 {b["peak"]["p50_ms"]} ms, p99 {b["peak"]["p99_ms"]} ms'),
        ("collector, max rate", f'{c["peak"]["rate"]:.0f} req/s',
         f'p50 {c["peak"]["p50_ms"]} ms, p99 {c["peak"]["p99_ms"]} ms'),
        ("collector / baseline", f'{h["rate_ratio"]:.2f}', f"rounds {each} (goal >= 0.85)"),
        ("collector at half rate", f'{c["half"]["rate"]:.0f} req/s',
         f'p50 {c["half"]["p50_ms"]} ms, p99 {c["half"]["p99_ms"]} ms; rounds {half_p99} '
         "(goal p99 <= 5 ms)"),
        ("baseline at half rate", f'{b["half"]["rate"]:.0f} req/s',
         f'p50 {b["half"]["p50_ms"]} ms, p99 {b["half"]["p99_ms"]} ms'),
        ("accepted beacons stored", str(h["accepted_and_stored"]), "every 204 is in InfluxDB"),
        ("in-process per beacon", f'{r["profile"]["us_per_beacon_profiled"]} us',
         "Flask test client, under the profiler"),
        ("one sink into influxd", f'{ing["points_per_s"]:,} points/s',
         f'median of rounds {", ".join(f"{x:,}" for x in ing["rounds"])} (the first creates every '
         f'series), {ing["points_per_round"]:,} points each (goal >= 50,000/s)'),
    ]
    rows += [(f'top pages, 30 days, {q["raw_points"]:,} raw points', f'{q["ratio"]}x',
              f'rollup {q["rollup_ms"]} ms vs raw {q["raw_ms"]} ms; daily task {q["task_s_per_day"]} s '
              "a day (goal >= 50x)")
             for q in r["rollup_query"]]
    s = r["stats_api"]
    rows += [
        (f'dashboard: slowest query, {s["raw_points"]:,} raw points', f'{s["slowest_p95_ms"]} ms p95',
         f'"{s["slowest"]}" over 30 days, {s["repeat"]} runs (goal <= 150 ms)'),
        (f'dashboard: all {s["queries"]} queries, one after another', f'{s["page_p95_ms"]} ms p95',
         f'p50 {s["page_p50_ms"]} ms (goal <= 1 s)'),
    ]
    views = {**s["views"], **r["stats_api_12mo"]["views"]}
    rows += [(f"dashboard view {name!r}", f'{v["slowest_p95_ms"]} ms / {v["page_p95_ms"]} ms',
              f'slowest query p95 ("{v["slowest"]}") / whole page p95, {v["repeat"]} runs'
              + (", 11 months of rollups + the raw month" if name.startswith("12mo") else ""))
             for name, v in views.items() if name != "30d"]
    g = r.get("grafana")
    if g:
        rows += [(f"Grafana: slowest of {len(g['panels'])} panels, 30 days", f'{g["slowest_ms"]} ms',
                  f'"{g["slowest"]}", median of {g["repeat"]} runs; all panels one after another '
                  f'{g["all_ms"]} ms')]
    c = r.get("capacity")
    if c:
        per_m = c["bytes_per_million"]
        rows += [
            ("collector: beacons per core-second", f'{c["beacons_per_collector_core_s"]:,}',
             f'{c["requests"]:,} beacons, {c["collector_cpu_s"]} s of worker CPU (wrk, max rate)'),
            ("influxd: points per core-second", f'{c["points_per_influxd_core_s"]:,}',
             f'the same beacons stored, {c["influxd_cpu_s"]} s of influxd CPU'),
            ("disk per million pageviews", f'{per_m["raw"] / 2**20:.1f} MiB raw',
             f'_1h {per_m["_1h"] / 2**20:.2f} MiB, _1d {per_m["_1d"] / 2**20:.3f} MiB, '
             f'_1mo {per_m["_1mo"] / 2**10:.1f} KiB'),
            ("raw series, one site, one month", f'{c["raw_series_one_site_month"]:,}',
             "bench dataset: 200 pages, 5 sources, 4 agents, 6 countries, 3 time zones"),
            ("tasks per million pageviews", f'{c["daily_task_s_per_million"]} s daily',
             f'{c["hourly_task_s_per_million"]} s hourly; influxd RSS '
             f'{c["influxd_rss_bytes"] / 2**20:.0f} MiB'),
        ]
    budgets = {"agent.min.js": 850, "agent.extras.min.js": 1100}  # agent_js/build.mjs fails past them
    rows += [(f"agent {name}", f'{s["gzip_9"]} B gzip -9', f'{s["bytes"]} B minified'
              + (f', budget {budgets[name]:,} B' if name in budgets else ""))
             for name, s in r["agent"].items()]
    width = max(len(a) for a, _, _ in rows)
    return "\n".join([*(f"{a:<{width}}  {v:>22}  {note}" for a, v, note in rows), "",
                      "User-Agent judgement (goals: crawlers >= 95%, browsers <= 0.5%, devices >= 95%):",
                      *r["traffic_quality"]])


def main() -> None:
    env_creds = [os.environ.get(k) for k in ("INFLUXDB_V2_URL", "INFLUXDB_V2_ORG", "INFLUXDB_V2_TOKEN")]
    with tempfile.TemporaryDirectory(prefix="analytics-bench-") as tmp:
        state = Path(tmp)
        if all(env_creds):
            results = run(InfluxCredentials(*env_creds), state)  # type: ignore[arg-type]
        else:
            progress("starting a throwaway influxd")
            with LocalInflux(data_dir=str(state / "influxd")) as server:
                server.start()
                results = run(server.onboard(), state, server)
    (BENCH / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten: {BENCH / 'results.json'}, profile: {BENCH / 'profile.txt'}")


if __name__ == "__main__":
    main()
