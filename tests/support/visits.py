"""Visits with known entry and exit pages, sources, UTM values and device attributes over two
site days (one visit crosses midnight, and changes country on the way), written as raw points
shaped like the collector's, and every visit figure computed from them here, independently of
the tasks and the Stats API."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from analytics_bp.schema import raw_line
from tests.support.influx import Influx

SITE = "a.example"
DAYS = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))
PAGES = ("/", "/pricing", "/docs", "/blog", "/about")
SOURCES = ("google.com", "direct", "news.ycombinator.com", "duckduckgo.com")
CAMPAIGNS = ({"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring"},
             {"utm_source": "mastodon", "utm_medium": "social"})
AGENT_KEYS = ("browser", "os", "device", "country", "timezone", "platform")
# For the Stats API: when the daily rollup is complete up to (None: raw points only).
MODES = {"raw": None, "rollups": DAYS[1] + timedelta(days=1), "mixed": DAYS[1]}


def agent(s: int) -> dict[str, str]:
    """A session's browser, OS, device, country, time zone and platform: several of each."""
    return {"browser": ("Firefox", "Chrome", "Safari")[s % 3], "os": ("Linux", "Windows", "Mac OS X")[s % 3],
            "device": ("desktop", "mobile")[s % 2], "country": ("GB", "FR", "DE", "US")[s % 4],
            "timezone": ("0", "-60", "300")[s % 3], "platform": ("linux", "windows", "macos")[s % 3]}


def pageviews() -> list[dict[str, Any]]:
    """Each visit's pageviews in time order: the first carries the visit's referrer source and
    UTM values (as the collector stores a landing pageview), the later ones `internal` and none."""
    rnd = random.Random(27)
    rows: list[dict[str, Any]] = []
    for d, day in enumerate(DAYS):
        for s in range(30):
            start = day + timedelta(hours=8, minutes=rnd.randrange(600), seconds=s)
            views = rnd.choice((1, 1, 2, 3, 4))
            utm = CAMPAIGNS[s % 2] if s % 5 == 0 else {}
            for v in range(views):
                rows.append({"time": start + timedelta(minutes=2 * v, microseconds=v),
                             "page": rnd.choice(PAGES),
                             "source": rnd.choice(SOURCES) if v == 0 else "internal",
                             **(utm if v == 0 else {}),
                             "sess": f"{d}-{s}", "visitor": f"v{s % 22}", **agent(s)})
    # A visit that crosses midnight: a visit of each day, as the daily figures count them. Its
    # address changes on the way (a phone's network): its later pageviews come from another
    # country and time zone, and its visits still count under its first pageview's.
    for v, minute in enumerate((-3, -1, 1, 4)):
        rows.append({"time": DAYS[1] + timedelta(minutes=minute), "page": PAGES[v],
                     "source": "google.com" if v == 0 else "internal", "sess": "late",
                     "visitor": "v-late", **agent(0),
                     **({"country": "FR", "timezone": "-60"} if v in (1, 3) else {})})
    # Pageviews without a session ID (no agent sent them): counted, but in no visit.
    for i in range(3):
        rows.append({"time": DAYS[0] + timedelta(hours=9, seconds=i), "page": "/", "source": "direct",
                     "visitor": f"no-session-{i}", **agent(i)})
    return rows


def to_lines(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for i, r in enumerate(rows):
        values: dict[str, Any] = {"domain": SITE, "count": 1, "visitor": r["visitor"], "page": r["page"],
                                  "source": r["source"], **{k: r[k] for k in AGENT_KEYS}}
        values.update({k: r[k] for k in ("utm_source", "utm_medium", "utm_campaign") if k in r})
        if "sess" in r:
            values.update(sess_id=r["sess"], pages=1)
        out.append(raw_line("pageview", values, int(r["time"].timestamp()) * 10**9
                            + r["time"].microsecond * 1000 + i))
    return out


def events() -> list[dict[str, Any]]:
    """A `signup` a minute into every third visit, one without a session and one whose session has
    no pageview that day (both in no visit)."""
    out = [{"time": r["time"] + timedelta(minutes=1), "sess": r["sess"], "visitor": r["visitor"]}
           for r in pageviews() if "sess" in r and r["sess"].split("-")[-1].isdigit()
           and int(r["sess"].split("-")[-1]) % 3 == 0 and r["source"] != "internal"]
    out.append({"time": DAYS[0] + timedelta(hours=12), "visitor": "v-none"})
    out.append({"time": DAYS[0] + timedelta(hours=12, seconds=1), "sess": "1-0", "visitor": "v0"})
    return out


def event_lines() -> list[str]:
    out = []
    for i, e in enumerate(events()):
        values: dict[str, Any] = {"domain": SITE, "event": "signup", "count": 1, "visitor": e["visitor"],
                                  "page": "/", "note": "x", "browser": "Firefox", "os": "Linux",
                                  "device": "desktop", "country": "GB", "timezone": "0", "platform": "linux"}
        if "sess" in e:
            values["sess_id"] = e["sess"]
        out.append(raw_line("event", values, int(e["time"].timestamp()) * 10**9 + 500 + i))
    return out


def engagement() -> list[dict[str, Any]]:
    """The engaged time of every pageview in a visit, 30 s after it: the n-th pageview of a visit
    `3 * n + len(page)` seconds; every third one hidden and shown again, so it also sent a smaller
    running total first (only the larger counts)."""
    order: dict[tuple[date, str], int] = defaultdict(int)
    out = []
    for r in sorted((r for r in pageviews() if "sess" in r), key=lambda r: r["time"]):
        visit = (r["time"].date(), r["sess"])
        order[visit] += 1
        n = order[visit]
        seconds = 3 * n + len(r["page"])
        view = {"time": r["time"] + timedelta(seconds=30), "sess": r["sess"], "pageview": n,
                "page": r["page"], "seconds": seconds, **{k: r[k] for k in AGENT_KEYS}}
        if len(out) % 3 == 0:
            out.append({**view, "time": view["time"] - timedelta(seconds=10), "seconds": seconds - 2})
        out.append(view)
    return out


def engagement_lines() -> list[str]:
    return [raw_line("engagement", {"domain": SITE, "page": e["page"], "seconds": e["seconds"],
                                    "pageview": e["pageview"], "sess_id": e["sess"],
                                    **{k: e[k] for k in AGENT_KEYS}},
                     int(e["time"].timestamp()) * 10**9 + e["time"].microsecond * 1000 + 700 + i)
            for i, e in enumerate(engagement())]


@dataclass(frozen=True)
class Visit:
    day: date
    entry_page: str
    exit_page: str
    source: str
    utm: tuple[str | None, str | None, str | None]
    visitor: str
    pageviews: int
    session: str = ""
    agent: tuple[str, ...] = ()  # the first pageview's AGENT_KEYS


    @property
    def bounce(self) -> int:
        return int(self.pageviews == 1)

    def value(self, key: str) -> str | None:
        if key in AGENT_KEYS:
            return self.agent[AGENT_KEYS.index(key)]
        if key.startswith("utm_"):
            return self.utm[("utm_source", "utm_medium", "utm_campaign").index(key)]
        return str(getattr(self, key))


def visits(rows: list[dict[str, Any]]) -> list[Visit]:
    """One per session ID and site day (UTC here): the first pageview's page, source, UTM and
    visitor, the last one's page."""
    grouped: dict[tuple[date, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if "sess" in r:
            grouped[(r["time"].date(), r["sess"])].append(r)
    out = []
    for (day, _), items in sorted(grouped.items()):
        items.sort(key=lambda r: r["time"])
        first, last = items[0], items[-1]
        out.append(Visit(day, first["page"], last["page"], first["source"],
                         (first.get("utm_source"), first.get("utm_medium"), first.get("utm_campaign")),
                         first["visitor"], len(items), first["sess"],
                         tuple(first[k] for k in AGENT_KEYS)))
    return out


def figures(found: list[Visit]) -> dict[str, int]:
    """Additive parts of a set of visits: visitors are distinct per day, summed over days."""
    per_day: dict[date, set[str]] = defaultdict(set)
    for v in found:
        per_day[v.day].add(v.visitor)
    return {"visits": len(found), "visitors": sum(len(s) for s in per_day.values()),
            "pageviews": sum(v.pageviews for v in found), "bounces": sum(v.bounce for v in found)}


def by_day_and(found: list[Visit], keys: tuple[str, ...]) -> dict[tuple[Any, ...], dict[str, int]]:
    """(day, *values) -> figures: what the daily task's visit table for `keys` must hold."""
    groups: dict[tuple[Any, ...], list[Visit]] = defaultdict(list)
    for v in found:
        values = tuple(v.value(k) for k in keys)
        if any(x is not None for x in values):
            groups[(v.day, *values)].append(v)
    return {k: figures(g) for k, g in groups.items()}


# The daily visit tables and the tag each keeps.
TABLES = {"entry_pages": ("entry_page",), "exit_pages": ("exit_page",), "visit_sources": ("source",),
          "visit_utm_sources": ("utm_source",), "visit_utm_mediums": ("utm_medium",),
          "visit_utm_campaigns": ("utm_campaign",), "visit_browsers": ("browser",),
          "visit_oses": ("os",), "visit_devices": ("device",), "visit_countries": ("country",),
          "visit_timezones": ("timezone",), "visit_platforms": ("platform",)}


def stored(influx: Influx, bucket: str, name: str,
           keys: tuple[str, ...]) -> dict[tuple[Any, ...], dict[str, int]]:
    """A `_1d` visit table as (day, *values) -> figures, without the zero rows."""
    out: dict[tuple[Any, ...], dict[str, int]] = {}
    for r in influx.query('from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement == m)',
                          b=bucket + "_1d", m=name):
        assert r["domain"] == SITE
        stamp: datetime = r["_time"]
        out.setdefault((stamp.date(), *(r.get(k) for k in keys)), {})[r["_field"]] = r["_value"]
    # a row an earlier run of the day wrote and a later one no longer has is all zeros
    return {k: f for k, f in out.items() if any(f.values())}


