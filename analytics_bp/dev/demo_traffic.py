"""Four realistic weeks of traffic for a demo site, so `make run` opens on a dashboard with a month.

Why through the collector: the beacons are parsed, checked, enriched, hashed and bounded by the same
`Collector` as real ones (only their timestamps are set in the past), and the shipped tasks then
roll up those windows, so what the dashboard shows is exactly what a real month would give. Each
day has its own throwaway salt, kept in memory only. Only the demo domain is written: real sites'
data is never touched. Four weeks, not more: older raw points would be past the raw bucket's
default retention (30 days), and InfluxDB refuses those.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from .. import privacy
from ..cardinality import TagGuard
from ..collector import Collector, RequestParts
from ..enrich import CountryLookup
from ..schema import raw_line
from ..settings import Config

DEMO_SITE = "demo.test"
PAGES = [("/", 30), ("/pricing", 12), ("/docs/start", 10), ("/docs/api", 6), ("/blog/self-hosting", 8),
         ("/blog/privacy-by-design", 6), ("/blog/influxdb-rollups", 4), ("/about", 4),
         ("/changelog", 3), ("/contact", 2)]
REFERRERS = [("", 40), ("https://www.google.com/", 25), ("https://duckduckgo.com/", 7),
             ("https://news.ycombinator.com/item", 6), ("https://github.com/analytics", 6),
             ("https://t.co/x", 3), ("https://mastodon.social/@someone", 4), ("https://www.bing.com/", 3),
             ("https://lobste.rs/s/x", 2)]
CAMPAIGNS = [("?utm_source=newsletter&utm_medium=email&utm_campaign=november", 4),
             ("?utm_source=mastodon&utm_medium=social&utm_campaign=launch", 2)]
OUTBOUND = [("github.com/analytics/analytics_bp", 5), ("docs.influxdata.com/influxdb/v2/", 3),
            ("mastodon.social/@analytics", 2), ("grafana.com/docs/grafana/latest/", 2)]
DOWNLOADS = [("/files/analytics-guide.pdf", 5), ("/files/dashboards.zip", 3),
             ("objects.example-cdn.net/releases/analytics_bp-0.3.0.tar.gz", 1)]
AGENTS = [  # (User-Agent, navigator.platform, weight)
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36", "Win32", 30),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Safari/605.1.15", "MacIntel", 14),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Linux x86_64", 9),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Win32", 7),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Mobile/15E148 Safari/604.1", "iPhone", 20),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Mobile Safari/537.36", "Linux armv8l", 14),
    ("Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.6 Mobile/15E148 Safari/604.1", "iPad", 3),
]
# Documentation-style addresses would all be "unknown": real-looking networks give countries.
NETWORKS = [("81.2.69", 14, 0), ("5.9.0", 12, -60), ("90.0.0", 7, -60), ("24.48.0", 8, 300),
            ("66.249.64", 20, 480), ("1.120.0", 3, -600), ("126.0.0", 4, -540), ("145.0.0", 5, -60),
            ("49.36.0", 5, -330), ("177.67.80", 4, 180), ("78.64.0", 3, -60)]


T = TypeVar("T")


def _pick(rng: random.Random, items: list[tuple[T, int]]) -> T:
    return rng.choices([i[0] for i in items], weights=[i[1] for i in items])[0]


class _DaySalts(privacy.SaltStore):
    """One random salt per demo day, in memory only (a real day's salt would be deleted too)."""

    def __init__(self) -> None:
        super().__init__("/nonexistent", "day")
        self.salt = secrets.token_bytes(privacy.SALT_BYTES)

    def current(self) -> bytes:
        return self.salt


class LineCapture:
    """Stands where the collector's sink stands, keeping lines with the timestamp we choose."""

    accepting = True

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.at_ns = 0
        self.clock = self

    def next_ns(self) -> int:
        self.at_ns += 1000
        return self.at_ns

    def write(self, text: str) -> None:
        self.lines.append(text)

    def add_count(self, key: object, n: int = 1) -> None:
        """Demo beacons are all valid: nothing is refused."""


Beacon = tuple[datetime, str, dict[str, object], str, str]


def beacons(day: date, zone: ZoneInfo, rng: random.Random) -> Iterator[Beacon]:
    """(time, kind, body, User-Agent, IP) of one day's visits: more on weekdays and afternoons."""
    visits = int(rng.gauss(140 if day.weekday() < 5 else 80, 15))
    for _ in range(max(visits, 10)):
        ua, platform, _w = rng.choices(AGENTS, weights=[a[2] for a in AGENTS])[0]
        network, _w2, tz = rng.choices(NETWORKS, weights=[n[1] for n in NETWORKS])[0]
        ip = f"{network}.{rng.randint(1, 254)}"
        hour = min(23, max(0, int(rng.gauss(14, 4.5))))
        moment = datetime(day.year, day.month, day.day, hour, rng.randint(0, 59), rng.randint(0, 59),
                          tzinfo=zone)
        sess = secrets.token_hex(4)
        referrer = _pick(rng, REFERRERS)
        campaign = _pick(rng, [("", 90), *CAMPAIGNS])
        pages = 1 if rng.random() < 0.45 else rng.randint(2, 6)
        for n in range(pages):
            page = _pick(rng, PAGES)
            body = {"domain": DEMO_SITE, "page": page + (campaign if n == 0 else ""),
                    "referrer": referrer if n == 0 else f"https://{DEMO_SITE}/", "timezone": tz,
                    "platform": platform, "sess_id": sess, "pages": n + 1,
                    "load_ms": int(rng.lognormvariate(6.2, 0.5))}
            yield moment, "pageview", body, ua, ip
            if page == "/pricing" and rng.random() < 0.12:
                yield moment + timedelta(seconds=20), "event", {
                    "domain": DEMO_SITE, "page": page, "event": "signup", "sess_id": sess,
                    "timezone": tz, "platform": platform}, ua, ip
            if page.startswith("/blog") and rng.random() < 0.08:
                yield moment + timedelta(seconds=40), "event", {
                    "domain": DEMO_SITE, "page": page, "event": "socialclick", "sess_id": sess,
                    "timezone": tz, "platform": platform,
                    "note": rng.choice(["mastodon", "mastodon", "linkedin", "bluesky"])}, ua, ip
            yield from _extras(moment, body, page, rng, ua, ip)
            moment += timedelta(seconds=rng.randint(15, 240))


def _extras(moment: datetime, pageview: dict[str, object], page: str, rng: random.Random, ua: str,
            ip: str) -> Iterator[Beacon]:
    """What agent.extras.js adds to a pageview: its engaged time, and now and then a click on a
    link to another site or to a file."""
    common = {k: pageview[k] for k in ("domain", "sess_id", "timezone", "platform")}
    reading = 1.0 if page.startswith("/blog") else 0.5 if page.startswith("/docs") else 0.0
    seconds = min(3600, int(rng.lognormvariate(3.0 + reading, 0.8)))  # posts are read longest
    yield moment + timedelta(seconds=seconds), "event", {
        **common, "page": page, "event": "engagement", "engaged": seconds, "pages": pageview["pages"]}, ua, ip
    if page.startswith("/blog") and rng.random() < 0.15:
        yield moment + timedelta(seconds=seconds), "event", {
            **common, "page": page, "event": "outbound",
            "note": _pick(rng, OUTBOUND)}, ua, ip
    if page.startswith("/docs") and rng.random() < 0.12:
        yield moment + timedelta(seconds=seconds), "event", {
            **common, "page": page, "event": "download", "note": _pick(rng, DOWNLOADS)}, ua, ip


def month_lines(cfg: Config, days: int, today: date, guard: TagGuard, seed: int = 7) -> list[str]:
    """Line protocol for `days` days before `today` (site days), through the real collector."""
    zone = ZoneInfo(cfg.timezone)
    rng = random.Random(seed)
    capture = LineCapture()
    demo_cfg = _demo_config(cfg)
    out: list[str] = []
    countries = CountryLookup()
    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        collector = Collector(demo_cfg, lambda: capture, _DaySalts(), guard, countries)
        for moment, kind, body, ua, ip in beacons(day, zone, rng):
            capture.at_ns = int(moment.timestamp()) * 1_000_000_000 + rng.randint(0, 999_999) * 1000
            parts = RequestParts(json.dumps(body).encode(), "text/plain", None, ip, None, ua, None, None)
            outcome = collector.handle(kind, parts)
            if outcome.status != 204:
                raise RuntimeError(f"demo beacon refused: {outcome.reason}")
        out += capture.lines
        capture.lines = []
        noon = int(datetime(day.year, day.month, day.day, 12, tzinfo=zone).timestamp()) * 10**9
        out += [raw_line("usage", {"action": "reports.export", "count": 1, "pseudonym_id": f"p{i}"},
                         noon + i) for i in range(rng.randint(2, 9))]
        calls = rng.randint(40, 120)
        out.append(raw_line("usage_count", {"category": "api", "event": "call", "count": calls},
                            noon + 100))
        if back in (days - 3, 9):
            out.append(raw_line("mark", {"category": "timeline", "name": f"deploy v1.{days - back}",
                                         "count": 1}, noon + 200))
    return out


def _demo_config(cfg: Config) -> Config:
    """The demo's own settings: its domain permitted, its events permitted, countries looked up."""
    from dataclasses import replace

    return replace(cfg, permitted_domains=(*cfg.permitted_domains, DEMO_SITE),
                   permitted_events=tuple({*cfg.permitted_events, "signup", "socialclick"}),
                   note_events=tuple({*cfg.note_events, "socialclick"}), geoip=True,
                   agent_extras=("outbound", "downloads", "engagement"),
                   respect_dnt=False, skip_domains=())


def task_runs(days: int, today: date, zone: ZoneInfo) -> Iterator[tuple[str, datetime]]:
    """(task stem, scheduled time) of every run that covers the demo days, oldest first."""
    start = datetime.combine(today - timedelta(days=days), datetime.min.time(), zone).astimezone(UTC)
    stop = datetime.combine(today, datetime.min.time(), zone).astimezone(UTC)
    moment = start + timedelta(hours=2)
    while moment <= stop:
        yield "hourly", moment
        moment += timedelta(hours=2)
    # At midnight a run covers exactly the day before: no run writes a partial day, so runs queued
    # together cannot overwrite a complete day with a partial one, whatever order they finish in.
    for back in range(days - 1, -1, -1):
        yield "daily", datetime.combine(today - timedelta(days=back), datetime.min.time(), zone) \
            .astimezone(UTC)
    months = sorted({(today - timedelta(days=b)).replace(day=1) for b in range(days + 1)})
    for first in [*months[1:], today]:
        yield "monthly", datetime.combine(first, datetime.min.time(), zone).astimezone(UTC)


def fill(cfg: Config, write: Callable[[list[str]], None],
         run_tasks: Callable[[list[tuple[str, datetime]]], None], days: int = 28,
         today: date | None = None, guard: TagGuard | None = None,
         progress: Callable[[str], None] = lambda _: None) -> int:
    """Write the demo month and roll it up; returns the number of points written.

    `run_tasks` gets the runs of one stage at a time: hourly and daily runs are independent of
    each other, the monthly ones read the daily rollups and come after them."""
    zone = ZoneInfo(cfg.timezone)
    today = today or datetime.now(zone).date()
    started = time.monotonic()
    lines = month_lines(cfg, days, today, guard or TagGuard(cfg.state_dir, cfg.max_tag_values))
    progress(f"demo: {len(lines)} points for {DEMO_SITE} over {days} days")
    write(lines)
    runs = list(task_runs(days, today, zone))
    # Hourly runs are queued together. Daily runs go one at a time: queued together, a day's
    # traffic row was once seen in `_1d` with `visitors` but without `pageviews` (not understood
    # yet; the scheduler itself never runs one task's runs at once). Monthly runs read the daily.
    stages = [[r for r in runs if r[0] == "hourly"]]
    stages += [[r] for r in runs if r[0] == "daily"]
    stages += [[r for r in runs if r[0] == "monthly"]]
    for batch in stages:
        run_tasks(batch)
    progress(f"demo: {len(runs)} rollup runs done ({time.monotonic() - started:.0f} s)")
    return len(lines)
