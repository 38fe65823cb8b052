"""The catalogue (analytics_bp/schema.py) is what is stored: every measurement, tag and field that
the collector, the usage API and the three Flux tasks really write, bucket by bucket, on a real
influxd; and docs/schema.md's table is generated from it."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from analytics_bp import rollups, schema
from tests.support.influx import Influx, flush

ROOT = Path(__file__).parents[2]
CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
          "Safari/537.36")
BASE = {"domain": "example.com", "sess_id": "tab-1", "timezone": -60, "platform": "Linux x86_64"}
# One of everything a point can carry, so every tag and field the catalogue names (those only
# some points carry included) is present, and an exact comparison means something.
BEACONS = [
    ("pageview", {**BASE, "page": "/a?utm_source=news&utm_medium=mail&utm_campaign=spring", "pages": 1,
                  "referrer": "https://search.example/q", "load_ms": 320}),
    ("pageview", {**BASE, "page": "/b", "pages": 2, "referrer": "https://example.com/a"}),
    ("event", {**BASE, "page": "/b", "event": "socialclick", "note": "twitter"}),
    ("event", {**BASE, "page": "/b", "event": "outbound", "note": "github.com/x"}),
    ("event", {**BASE, "page": "/b", "event": "download", "note": "/files/a.pdf"}),
    ("event", {**BASE, "page": "/b", "event": "engagement", "engaged": 7, "pages": 2}),
    ("pageview", b"{nope"),  # rejected: counted by its reason
]
INTERNAL_COLUMNS = {"_time", "_start", "_stop", "_value", "_field", "_measurement", "result", "table"}


def observed(influx: Influx, bucket: str) -> dict[str, tuple[set[str], set[str]]]:
    """measurement -> (tag keys, field keys), read back from every point of the bucket."""
    found: dict[str, tuple[set[str], set[str]]] = {}
    for row in influx.query("from(bucket: b) |> range(start: 0)", b=bucket):
        tags, fields = found.setdefault(row["_measurement"], (set(), set()))
        tags.update(k for k, v in row.items() if k not in INTERNAL_COLUMNS and v is not None)
        fields.add(row["_field"])
    return found


def write_one_of_everything(app: Any) -> None:
    client = app.test_client()
    for kind, body in BEACONS:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        client.post(f"/analytics/{kind}", data=data, environ_base={"REMOTE_ADDR": "203.0.113.5"},
                    headers={"User-Agent": CHROME, "Content-Type": "text/plain"})
    usage = app.extensions["analytics"]
    usage.log_event("billing", "charge", "alice", amount=3)
    usage.count("export", "files")
    usage.seen("alice", "logins")
    usage.mark("v2 released")
    flush(app)


def test_what_influxdb_holds_is_the_catalogue(make_app: Any, influx: Influx, bucket: str) -> None:
    app = make_app(ANALYTICS_AGENT_EXTRAS="outbound,downloads,engagement")
    write_one_of_everything(app)
    # Runs scheduled now read only complete hours (hourly, daily) and days (monthly): copies of every
    # point 90 minutes and a day earlier lie in their windows.
    for shift in ("-90m", "-1d"):
        influx.query(f"from(bucket: b) |> range(start: -2h) |> timeShift(duration: {shift}) "
                     "|> to(bucket: b)", b=bucket)
    rollups.setup(app.extensions["analytics"].config, influx.admin)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for stem in ("hourly", "daily", "monthly"):
        result = influx.admin.run_task(f"{bucket}_{stem}", now)
        assert result["status"] == "success", result["logs"][-1]
    buckets = {"raw": bucket, **{tier: f"{bucket}_{tier}" for tier in ("1h", "1d", "1mo")}}
    for tier, name in buckets.items():
        held = observed(influx, name)
        expected = {m.name: m for m in schema.measurements(tier)}
        assert set(held) == set(expected), tier
        for measurement, (tags, fields) in held.items():
            entry = expected[measurement]
            assert tags == set(entry.tags), (tier, measurement)
            if entry.open_fields:
                assert set(entry.fields) <= fields, (tier, measurement)
            else:
                assert fields == set(entry.fields), (tier, measurement)


def test_the_breakdowns_the_stats_api_reads_are_derived_from_the_catalogue() -> None:
    """Pageview counts by pageview keys: not `traffic` (figures), `events` (event tags),
    `engagement` (other fields) or the usage API's counts (no domain)."""
    assert schema.breakdowns("1d") == {
        "pages": {"page"}, "sources": {"source"}, "agents": {"browser", "os", "device"},
        "countries": {"country"}, "timezones": {"timezone", "platform"},
        "utms": {"utm_source", "utm_medium", "utm_campaign"}}
    assert schema.breakdowns("1h") == {
        "pageviews": set(), "pages": {"page"}, "sources": {"source"},
        "agents": {"browser", "os", "device"}, "countries": {"country"}}


def test_series_bounds_follow_from_settings_alone() -> None:
    """Raw: one series for the site's pageviews, one for its engaged time, one per accepted
    event name; a rollup, per window: `top` + 1 per ranked measurement (per event name for
    events), one for the site's figures."""
    assert schema.series_bound("raw", 100, 5) == 1 + 5 + 1
    assert schema.series_bound("1h", 100, 5) == 1 + 4 * 101 + 5 * 101
    # six pageview breakdowns, twelve visit tables (one key each), events per name, engagement
    assert schema.series_bound("1d", 10, 2) == 1 + 6 * 11 + 12 * 11 + 2 * 11 + 11
    assert schema.series_bound("1mo", 10, 2) == 1


def test_docs_schema_table_is_generated() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "schema_table.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_raw_points_take_their_shape_from_the_catalogue() -> None:
    """Every raw writer passes values; the catalogue alone makes each a tag or a field."""
    assert schema.raw_line("pageview", {"page": "/a b", "count": 1, "domain": "x.test", "visitor": "v"},
                           5) == 'pageview,domain=x.test page="/a b",count=1i,visitor="v" 5'
    assert schema.raw_line("usage", {"action": "a.b", "count": 1, "plan": "pro"}, 7) == \
        'usage,action=a.b count=1i,plan="pro" 7'  # log_event's keyword arguments are fields
    with pytest.raises(schema.NotInCatalogue, match=r"pageview: \['ip'\]"):
        schema.raw_line("pageview", {"domain": "x.test", "count": 1, "ip": "192.0.2.1"}, 1)
    with pytest.raises(KeyError):
        schema.raw_line("pageviews", {"count": 1}, 1)  # a rollup's measurement, not a raw one
