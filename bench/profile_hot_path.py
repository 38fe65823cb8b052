"""Profile one beacon's path through Flask and the collector in-process with pyinstrument."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from pyinstrument import Profiler

from analytics_bp import create_app

UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/131.0.0.0 Safari/537.36")


def beacon(i: int) -> str:
    return json.dumps({"domain": "bench.example", "page": f"/docs/{i % 40}?utm_source=news",
                       "referrer": "https://www.google.com/", "timezone": -60,
                       "platform": "Linux x86_64", "sess_id": f"s{i:08d}", "pages": 1, "load_ms": 300})


def measure(influx_env: dict[str, str], bucket: str, n: int, out: Path) -> dict[str, Any]:
    """Microseconds per beacon through the Flask test client, and the profile written to `out`."""
    with tempfile.TemporaryDirectory() as state:
        app = create_app(ANALYTICS_PERMITTED_DOMAINS="bench.example", ANALYTICS_BUCKET=bucket,
                         ANALYTICS_STATE_DIR=state, **influx_env)
        client = app.test_client()
        headers = {"Content-Type": "text/plain", "User-Agent": UA, "Origin": "https://bench.example",
                   "X-Forwarded-For": "203.0.113.9"}
        bodies = [beacon(i) for i in range(n)]
        for body in bodies[:500]:  # warm caches (UA parser, registry) before measuring
            client.post("/analytics/pageview", data=body, headers=headers)
        profiler = Profiler(interval=0.0005)
        started = time.perf_counter()
        with profiler:
            for body in bodies:
                if client.post("/analytics/pageview", data=body, headers=headers).status_code != 204:
                    raise RuntimeError("beacon refused during profiling")
        elapsed = time.perf_counter() - started
        app.extensions["analytics"].close()
    out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    return {"beacons": n, "us_per_beacon_profiled": round(elapsed / n * 1e6, 1), "profile": out.name}
