"""Collector versus bare-Flask baseline under the same gunicorn settings, driven by wrk."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analytics_bp.dev.gunicorn import Gunicorn

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CONNECTIONS = 16


@dataclass
class WrkResult:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "seconds": round(self.seconds, 2), "rate": round(self.rate, 1),
                "non_2xx": self.non_2xx, "socket_errors": self.socket_errors,
                "p50_ms": self.p50_ms, "p90_ms": self.p90_ms, "p99_ms": self.p99_ms}


def server(app: str, env: Mapping[str, str], log: Path) -> Gunicorn:
    """`app` under the tests' gunicorn helper: 2 workers, no access log, warnings only."""
    quiet = {**env, "ANALYTICS_ACCESS_LOG": "/dev/null", "ANALYTICS_LOG_LEVEL": "warning",
             "PYTHONPATH": str(BENCH)}
    return Gunicorn(quiet, workers=2, log=log, app=app)


def wrk(url: str, seconds: int, delay_ms: float = 0.0) -> WrkResult:
    """Run wrk in its own process; the Lua script's done() prints exact percentiles as JSON."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "5s",
         "-s", str(BENCH / "pageview.lua"), url],
        capture_output=True, text=True, check=True,
        env={**os.environ, "BENCH_DELAY_MS": f"{delay_ms:.3f}"})
    line = next(x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON "))
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    return WrkResult(raw["requests"], raw["duration_us"] / 1e6, raw["non_2xx"], raw["socket_errors"],
                     raw["p50_us"] / 1000, raw["p90_us"] / 1000, raw["p99_us"] / 1000)


def measure(server: Gunicorn, seconds: int, progress: Any) -> dict[str, WrkResult]:
    """Warm up, find the maximum rate, then measure latency at half of it (paced connections)."""
    with server:
        warmup = wrk(server.url, 2)
        progress(f"{server.app}: maximum rate, {seconds}s")
        peak = wrk(server.url, seconds)
        # Each connection waits `delay` before each request: CONNECTIONS / delay ~ half the peak rate.
        delay_ms = CONNECTIONS / (peak.rate / 2) * 1000
        progress(f"{server.app}: latency at half rate (~{peak.rate / 2:.0f} req/s), {seconds}s")
        half = wrk(server.url, seconds, delay_ms)
    return {"warmup": warmup, "peak": peak, "half": half}
