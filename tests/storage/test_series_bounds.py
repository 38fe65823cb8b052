"""Series bounded by construction (docs/schema.md, "Series bounds"): whatever beacons carry, the
series one site creates in each bucket stay within `schema.series_bound`, computed from settings
alone, counted by InfluxDB's own `influxdb.cardinality()` after the shipped tasks ran; and what a
rollup keeps is chosen by distinct visitors, so a flood from one client cannot push the values
real visitors use into `(other)`. Real influxd, the real collector and the shipped tasks."""

from __future__ import annotations

import json
import random
import string
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from flask import Flask

from analytics_bp import rollups, schema
from analytics_bp.collector import RequestParts
from tests.support.influx import Influx, flush
from tests.support.web import CHROME_UA

SITE = "example.com"
TOP = 12
# socialclick and signup (the test app's ANALYTICS_PERMITTED_EVENTS), outbound and download
EVENT_NAMES = 4
AGENTS = [CHROME_UA,
          "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
          "like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"]


def send(app: Flask, kind: str, body: dict[str, Any], ip: str, ua: str = CHROME_UA) -> None:
    parts = RequestParts(json.dumps(body).encode(), "text/plain", None, ip, None, ua, None, None)
    outcome = app.extensions["analytics"].collector.handle(kind, parts)
    assert outcome.status == 204, outcome


def word(rng: random.Random, k: int = 10) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=k))


def hostile_traffic(app: Flask, rng: random.Random) -> int:
    """Beacons whose every value is inside a small vocabulary (97 pages, 80 campaigns, 73
    referrers, 61 time zones, 3 browsers: one new combination per beacon, which made one new
    series per beacon when every value was a tag), then beacons of random values. Returns the
    pageviews sent."""
    pages = [f"/p{i}" for i in range(97)]
    campaigns = [f"c{i}" for i in range(80)]
    referrers = [f"https://r{i}.example.net/" for i in range(73)]
    sent = 0
    for i in range(1500):
        body = {"domain": SITE, "page": rng.choice(pages) + "?utm_campaign=" + rng.choice(campaigns),
                "referrer": rng.choice(referrers), "timezone": rng.randrange(-720, 841, 15) // 15 * 15,
                "platform": rng.choice(["Win32", "MacIntel", "Linux x86_64"]), "sess_id": f"s{i}"}
        send(app, "pageview", body, f"10.0.{i % 50}.{i % 7}", rng.choice(AGENTS))
        sent += 1
    for i in range(800):
        path = "/" + word(rng)
        body = {"domain": SITE, "page": f"{path}?utm_source={word(rng)}&utm_medium={word(rng)}",
                "referrer": f"https://{word(rng)}.example/", "platform": word(rng, 6),
                "sess_id": word(rng)}
        send(app, "pageview", body, "10.1.0.1", rng.choice(AGENTS))
        sent += 1
        send(app, "event", {"domain": SITE, "page": path, "event": "socialclick", "note": word(rng)},
             "10.1.0.1")
        send(app, "event", {"domain": SITE, "page": path, "event": "outbound",
                            "note": f"{word(rng)}.example/x"}, "10.1.0.1")
        send(app, "event", {"domain": SITE, "page": path, "event": "engagement", "engaged": 5,
                            "pages": 1 + i % 3, "sess_id": f"e{i}"}, "10.1.0.1")
    return sent


def run_tasks(influx: Influx, app: Flask, stamps: list[datetime]) -> None:
    """The shipped tasks (with this app's settings) as of the end of each hour and day the
    beacons fell in: the hour still under way, so as queries with `now()` set, not as runs."""
    cfg = app.extensions["analytics"].config
    rollups.setup(cfg, influx.admin)
    task = {t.name.rsplit("_", 1)[1]: t.flux for t in rollups.tasks(cfg)}
    for hour in sorted({t.replace(minute=0, second=0, microsecond=0) for t in stamps}):
        influx.admin.run_flux_as_of(task["hourly"], hour + timedelta(hours=1))
        influx.admin.run_flux_as_of(task["daily"], hour + timedelta(hours=1))
    for day in sorted({t.replace(hour=0, minute=0, second=0, microsecond=0) for t in stamps}):
        influx.admin.run_flux_as_of(task["monthly"], day + timedelta(days=1, hours=1))


def stamps_of(influx: Influx, bucket: str) -> list[datetime]:
    return [r["_time"] for r in influx.query(
        'from(bucket: b) |> range(start: -1d) |> filter(fn: (r) => r._field == "count" and '
        'r._measurement == "pageview") |> group()', b=bucket)]


def series(influx: Influx, bucket: str, measurement: str | None = None) -> int:
    """InfluxDB's own count of the site's series in `bucket` over the last day and the next."""
    where = "r.domain == site" + (" and r._measurement == m" if measurement else "")
    rows = influx.query('import "influxdata/influxdb"\n'
                        f'influxdb.cardinality(bucket: b, start: -40d, stop: 2d, predicate: (r) => {where})',
                        b=bucket, site=SITE, m=measurement or "")
    return int(rows[0]["_value"]) if rows else 0


def test_hostile_beacons_cannot_grow_series_past_the_bounds_settings_fix(
        make_app: Any, influx: Influx, bucket: str) -> None:
    app = make_app(ANALYTICS_TOP_VALUES=str(TOP), ANALYTICS_AGENT_EXTRAS="outbound,engagement")
    sent = hostile_traffic(app, random.Random(27))
    flush(app)
    stamps = stamps_of(influx, bucket)
    assert len(stamps) == sent
    run_tasks(influx, app, stamps)
    hours = len({t.replace(minute=0, second=0, microsecond=0) for t in stamps})
    days = len({t.date() for t in stamps})
    bounds = {tier: schema.series_bound(tier, TOP, EVENT_NAMES) for tier in schema.TIERS}
    found = {"raw": series(influx, bucket)}
    found.update({tier: series(influx, f"{bucket}_{tier}") for tier in ("1h", "1d", "1mo")})
    print("series found / bound per window:", found, bounds)
    assert found["raw"] <= bounds["raw"]
    assert found["raw"] == 4  # pageviews, engaged time, and the two event names the flood used
    assert found["1h"] <= bounds["1h"] * hours
    assert found["1d"] <= bounds["1d"] * days
    assert found["1mo"] <= bounds["1mo"] * days
    # The ranked rollups keep exactly TOP values and one `(other)` per window, and fold nothing
    # away: every pageview is in the daily pages.
    assert TOP + 1 <= series(influx, f"{bucket}_1d", "pages") <= (TOP + 1) * days
    pages = influx.query('from(bucket: b) |> range(start: -40d, stop: 2d) |> filter(fn: (r) => '
                         'r._measurement == "pages") |> group() |> sum()', b=f"{bucket}_1d")
    assert pages[0]["_value"] == sent


def test_a_flood_from_one_client_cannot_push_real_values_into_other(
        make_app: Any, influx: Influx, bucket: str) -> None:
    """1,000 junk pages and outbound hosts from one client first (what filled the first-come cap
    before), then 30 visitors reading five real pages and clicking two real links: every real
    value keeps its own row with its exact count; the junk loses the ranking."""
    app = make_app(ANALYTICS_TOP_VALUES=str(TOP), ANALYTICS_MAX_TAG_VALUES=str(TOP),
                   ANALYTICS_AGENT_EXTRAS="outbound")
    rng = random.Random(29)
    for i in range(1000):
        send(app, "pageview", {"domain": SITE, "page": f"/junk/{i}"}, "10.9.9.9")
        send(app, "event", {"domain": SITE, "page": "/", "event": "outbound",
                            "note": f"junk{i}.example/"}, "10.9.9.9")
    real = [f"/real/{i}" for i in range(5)]
    links = ["github.com", "docs.python.org"]
    expected_pages: Counter[str] = Counter()
    expected_links: Counter[str] = Counter()
    for v in range(30):
        for page in rng.sample(real, 3):
            send(app, "pageview", {"domain": SITE, "page": page}, f"10.2.0.{v + 1}")
            expected_pages[page] += 1
        link = links[v % 2]
        send(app, "event", {"domain": SITE, "page": "/", "event": "outbound", "note": f"{link}/x"},
             f"10.2.0.{v + 1}")
        expected_links[link] += 1
    flush(app)
    stamps = stamps_of(influx, bucket)
    run_tasks(influx, app, stamps)
    for tier in ("1h", "1d"):
        pages = Counter[str]()
        for r in influx.query('from(bucket: b) |> range(start: -1d, stop: 2d) |> filter(fn: (r) => '
                              'r._measurement == "pages")', b=f"{bucket}_{tier}"):
            pages[r["page"]] += r["_value"]
        assert {p: pages[p] for p in real} == dict(expected_pages), tier
        assert sum(pages.values()) == 1000 + sum(expected_pages.values())
        assert pages["(other)"] >= 1000 - TOP * len({t.hour for t in stamps})  # the junk, folded
        destinations = Counter[str]()
        for r in influx.query('from(bucket: b) |> range(start: -1d, stop: 2d) |> filter(fn: (r) => '
                              'r._measurement == "events" and r.event == "outbound")',
                              b=f"{bucket}_{tier}"):
            destinations[r["destination"]] += r["_value"]
        assert {d: destinations[d] for d in links} == dict(expected_links), tier
        assert destinations["(other)"] >= 1000 - TOP * len({t.hour for t in stamps})
