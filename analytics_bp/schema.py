"""What is stored where, as data: every measurement of every bucket, its tags and fields, and who
writes it (issue 27's catalogue, first part: today's schema, exactly).

Why data: the same list generates docs/schema.md's "Catalogue" table (`scripts/schema_table.py`,
checked by a test like the config table), is checked against what the collector, the usage API and
the Flux tasks really write on a real influxd (tests/storage/test_schema.py compares InfluxDB's own
`schema.tagKeys` and `schema.fieldKeys` with it, bucket by bucket), and gives the Stats API its
rollups' tag sets (`daily_breakdowns`, `hourly_pageview_tags`), so a task and its reader cannot
drift apart unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .points import Clock, CounterKey, FieldValue, line

TIERS = ("raw", "1h", "1d", "1mo")  # bucket suffixes: raw is `<bucket>`, the others `<bucket>_<tier>`
WRITERS = {"raw": "the collector and the usage API", "1h": "task `<bucket>_hourly`",
           "1d": "task `<bucket>_daily`", "1mo": "task `<bucket>_monthly`"}

# The tags a pageview carries, and those events and engaged time share with it.
AGENT_TAGS = ("browser", "os", "device", "country", "timezone", "platform")
UTM_TAGS = ("utm_source", "utm_medium", "utm_campaign")
EVENT_ROLLUP_TAGS = ("event", "label", "destination", "file")

# Each Stats API dimension (a name from Plausible's vocabulary) and the raw point's key holding it.
DIMENSION_KEYS = {
    "event:page": "page", "event:name": "event", "event:props:note": "label",
    "visit:source": "source", "visit:utm_source": "utm_source", "visit:utm_medium": "utm_medium",
    "visit:utm_campaign": "utm_campaign", "visit:browser": "browser", "visit:os": "os",
    "visit:device": "device", "visit:country": "country", "visit:timezone": "timezone",
    "visit:platform": "platform", "event:props:destination": "destination",
    "event:props:file": "file",
}


@dataclass(frozen=True)
class Measurement:
    tier: str
    name: str
    tags: tuple[str, ...]
    fields: tuple[str, ...]
    holds: str  # one line for the docs
    sometimes: tuple[str, ...] = ()  # tags or fields only some points carry (UTM, label, ...)
    open_fields: bool = False  # the caller chooses further fields (usage: log_event's keyword args)


MEASUREMENTS: tuple[Measurement, ...] = (
    Measurement("raw", "pageview", ("domain", "page", "source", *UTM_TAGS, *AGENT_TAGS),
                ("count", "visitor", "sess_id", "pages", "load_ms"),
                "one point per accepted pageview", sometimes=(*UTM_TAGS, "sess_id", "pages", "load_ms")),
    Measurement("raw", "event", ("domain", "page", "event", "label", "destination", "file", *AGENT_TAGS),
                ("count", "visitor", "sess_id", "note"), "one point per accepted event",
                sometimes=("label", "destination", "file", "sess_id", "note")),
    Measurement("raw", "engagement", ("domain", "page", *AGENT_TAGS), ("seconds", "pageview", "sess_id"),
                "one point per engaged-time beacon (running total of a pageview's visible seconds)"),
    Measurement("raw", "rejected", ("reason",), ("count",), "refused beacons, counted by a fixed reason"),
    Measurement("raw", "usage", ("action",), ("count", "pseudonym_id"), "`log_event` and `track`",
                sometimes=("pseudonym_id",), open_fields=True),
    Measurement("raw", "usage_count", ("category", "event"), ("count",), "`count`"),
    Measurement("raw", "usage_seen", ("category", "period"), ("distinct",), "`seen`: distinct so far"),
    Measurement("raw", "mark", ("category",), ("name", "count"), "`mark`, and `golive` once per bucket"),
    Measurement("1h", "pageviews", ("domain", "page", "source", "browser", "os", "device", "country"),
                ("count",), "pageviews per hour"),
    Measurement("1h", "events", ("domain", *EVENT_ROLLUP_TAGS), ("count",), "events per hour",
                sometimes=("label", "destination", "file")),
    Measurement("1h", "usage", ("action",), ("count",), "usage events per hour"),
    Measurement("1h", "usage_counts", ("category", "event"), ("count",), "`count` sums per hour"),
    Measurement("1h", "rejected", ("reason",), ("count",), "refused beacons per hour"),
    Measurement("1h", "mark", ("category",), ("name", "count"), "marks, copied for Grafana annotations"),
    Measurement("1d", "traffic", ("domain",),
                ("pageviews", "visitors", "sessions", "bounces", "pages_per_session", "load_ms_median",
                 "engaged_views", "time_on_page_median", "visit_seconds", "engaged_visits"),
                "the site's daily figures",
                sometimes=("load_ms_median", "engaged_views", "time_on_page_median", "visit_seconds",
                           "engaged_visits")),
    Measurement("1d", "pages", ("domain", "page"), ("count",), "pageviews by page"),
    Measurement("1d", "sources", ("domain", "source"), ("count",), "pageviews by source"),
    Measurement("1d", "agents", ("domain", "browser", "os", "device"), ("count",),
                "pageviews by browser, OS and device"),
    Measurement("1d", "countries", ("domain", "country"), ("count",), "pageviews by country"),
    Measurement("1d", "timezones", ("domain", "timezone", "platform"), ("count",),
                "pageviews by time zone and platform"),
    Measurement("1d", "utms", ("domain", *UTM_TAGS), ("count",), "pageviews with a UTM value, by them",
                sometimes=UTM_TAGS),
    Measurement("1d", "events", ("domain", *EVENT_ROLLUP_TAGS), ("count",), "events by name and props",
                sometimes=("label", "destination", "file")),
    Measurement("1d", "engagement", ("domain", "page"), ("views", "median"), "time on page, per page"),
    Measurement("1d", "usage_seen", ("category", "period"), ("distinct",), "`seen`, kept forever"),
    Measurement("1mo", "traffic", ("domain",),
                ("pageviews", "visitors", "sessions", "bounces", "visit_seconds", "engaged_visits"),
                "the site's monthly figures", sometimes=("visit_seconds", "engaged_visits")),
)


def measurements(tier: str) -> tuple[Measurement, ...]:
    return tuple(m for m in MEASUREMENTS if m.tier == tier)


def measurement(tier: str, name: str) -> Measurement:
    return next(m for m in MEASUREMENTS if m.tier == tier and m.name == name)


class NotInCatalogue(ValueError):
    """A writer tried to store a key the catalogue does not list for that measurement."""


def _raw_shapes() -> dict[str, tuple[frozenset[str], frozenset[str] | None]]:
    """Raw measurement -> (its tags, its fields or None when the caller may add fields)."""
    return {m.name: (frozenset(m.tags), None if m.open_fields else frozenset(m.fields))
            for m in measurements("raw")}


def raw_line(name: str, values: Mapping[str, FieldValue], ts_ns: int) -> str:
    """One raw point as line protocol, each value a tag or a field as the catalogue says.

    Why every writer of raw points goes through here (the collector, the usage API, the demo, the
    benchmark's and the tests' datasets): whether a value is a tag (a series) or a field is the
    schema's decision, made once in MEASUREMENTS, so moving a value between the two is a
    catalogue change, not a hunt through line builders. A key the catalogue does not list is
    refused: nothing reaches InfluxDB that docs/schema.md does not describe."""
    tag_keys, field_keys = _RAW_SHAPES[name]
    tags = {k: str(v) for k, v in values.items() if k in tag_keys}
    fields = {k: v for k, v in values.items() if k not in tag_keys}
    if field_keys is not None and not fields.keys() <= field_keys:
        raise NotInCatalogue(f"{name}: {sorted(fields.keys() - field_keys)} not in the catalogue")
    return line(name, tags, fields, ts_ns)


def counter_lines(counts: Iterable[tuple[CounterKey, int]], clock: Clock) -> list[str]:
    """Aggregated counters ((measurement, tags) -> n, as `Writer.add_count` keeps them) as
    `count` points."""
    return [raw_line(m, {**dict(tags), "count": n}, clock.next_ns()) for (m, tags), n in counts]


def carried_only_by(name: str, other: str) -> frozenset[str]:
    """Tags raw measurement `name` carries and `other` does not (events' names and props; a
    pageview's source and UTM values): what a query may not mix across them."""
    return frozenset(measurement("raw", name).tags) - frozenset(measurement("raw", other).tags)


def rollup_tags(tier: str, name: str) -> frozenset[str]:
    """The tags a rollup measurement keeps besides the domain."""
    return frozenset(measurement(tier, name).tags) - {"domain"}


def daily_breakdowns() -> dict[str, frozenset[str]]:
    """The `_1d` measurements that count pageviews by tags, with the tags each keeps besides domain."""
    pageview_tags = set(measurement("raw", "pageview").tags)
    return {m.name: frozenset(m.tags) - {"domain"} for m in measurements("1d")
            if m.fields == ("count",) and set(m.tags) <= pageview_tags}


def hourly_pageview_tags() -> frozenset[str]:
    return rollup_tags("1h", "pageviews")


def markdown_table() -> str:
    """docs/schema.md's catalogue table, one row per measurement."""
    rows = ["| Bucket | Measurement | Tags | Fields | Holds |", "|---|---|---|---|---|"]
    for m in MEASUREMENTS:
        bucket = "`analytics`" if m.tier == "raw" else f"`analytics_{m.tier}`"
        more = ", and the caller's" if m.open_fields else ""
        rows.append(f"| {bucket} | `{m.name}` | {_names(m.tags, m.sometimes)} | "
                    f"{_names(m.fields, m.sometimes)}{more} | {m.holds} |")
    return "\n".join(rows)


def _names(names: tuple[str, ...], sometimes: tuple[str, ...]) -> str:
    return ", ".join(f"`{n}`" + ("*" if n in sometimes else "") for n in names)


_RAW_SHAPES = _raw_shapes()  # once, at import: raw_line is on the beacon path
