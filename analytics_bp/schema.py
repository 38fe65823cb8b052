"""What is stored where, as data: every measurement of every bucket, its tags and fields, and who
writes it (issue 27's catalogue, first part: today's schema, exactly).

Why data: the same list generates docs/schema.md's "Catalogue" table (`scripts/schema_table.py`,
checked by a test like the config table), is checked against what the collector, the usage API and
the Flux tasks really write on a real influxd (tests/storage/test_schema.py compares InfluxDB's own
`schema.tagKeys` and `schema.fieldKeys` with it, bucket by bucket), and gives the Stats API its
rollups' tag sets (`breakdowns`), so a task and its reader cannot
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
    "event:props:file": "file", "visit:entry_page": "entry_page", "visit:exit_page": "exit_page",
}
# Keys a visit takes from its first pageview (entry page, source, UTM values) or its last (exit
# page): a query grouped or filtered by one counts whole visits (docs/schema.md, "Visits").
VISIT_KEYS = frozenset({"entry_page", "exit_page", "source", *UTM_TAGS})
# Keys every pageview carries and a visit also takes from its first pageview: a query that counts
# visits (VISIT_COUNTS) by or filtered by one counts whole visits by that value; a query counting
# only pageviews or events counts each point by its own (docs/schema.md, "Visits").
VISIT_ATTRIBUTE_KEYS = frozenset(AGENT_TAGS)
VISIT_COUNTS = frozenset({"visitors", "visits", "bounce_rate", "views_per_visit"})
VISIT_FIELDS = ("visits", "visitors", "pageviews", "bounces")
# The daily task's visit tables (flux/visits.flux), one visit key each, so that a table's distinct
# visitors are exact for its key (a table of two keys would count a visitor of two combinations
# of one value twice when summed).
VISIT_TABLES = {
    "entry_pages": ("entry_page", "visits by their first page, ranked"),
    "exit_pages": ("exit_page", "visits by their last page, ranked"),
    "visit_sources": ("source", "visits by their first pageview's source, ranked"),
    **{f"visit_{key}s": (key, f"visits with a `{key}`, by their first pageview's, ranked")
       for key in UTM_TAGS},
    **{f"visit_{plural}": (key, f"visits by their first pageview's `{key}`, ranked")
       for key, plural in zip(AGENT_TAGS, ("browsers", "oses", "devices", "countries", "timezones",
                                           "platforms"), strict=True)},
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
    # Raw points: tags only from closed sets the collector chooses (the site, an accepted event
    # name); every value a visitor controls is a field, so beacons cannot add series (docs/schema.md,
    # "Series bounds").
    Measurement("raw", "pageview", ("domain",),
                ("count", "visitor", "sess_id", "pages", "load_ms", "page", "source", *UTM_TAGS,
                 *AGENT_TAGS),
                "one point per accepted pageview", sometimes=(*UTM_TAGS, "sess_id", "pages", "load_ms")),
    Measurement("raw", "event", ("domain", "event"),
                ("count", "visitor", "sess_id", "note", "page", "label", "destination", "file",
                 *AGENT_TAGS),
                "one point per accepted event",
                sometimes=("label", "destination", "file", "sess_id", "note")),
    Measurement("raw", "engagement", ("domain",), ("seconds", "pageview", "sess_id", "page", *AGENT_TAGS),
                "one point per engaged-time beacon (running total of a pageview's visible seconds)"),
    Measurement("raw", "rejected", ("reason",), ("count",), "refused beacons, counted by a fixed reason"),
    Measurement("raw", "usage", ("action",), ("count", "pseudonym_id"), "`log_event` and `track`",
                sometimes=("pseudonym_id",), open_fields=True),
    Measurement("raw", "usage_count", ("category", "event"), ("count",), "`count`"),
    Measurement("raw", "usage_seen", ("category", "period"), ("distinct",), "`seen`: distinct so far"),
    Measurement("raw", "mark", ("category",), ("name", "count"), "`mark`, and `golive` once per bucket"),
    # Rollups: a visitor-controlled value is a tag only where the task ranked it among the top
    # ANALYTICS_TOP_VALUES of its window by distinct visitors; the rest is one `(other)` row.
    Measurement("1h", "pageviews", ("domain",), ("count",), "the site's pageviews per hour"),
    Measurement("1h", "pages", ("domain", "page"), ("count",), "pageviews per hour by page, ranked"),
    Measurement("1h", "sources", ("domain", "source"), ("count",), "pageviews per hour by source, ranked"),
    Measurement("1h", "agents", ("domain", "browser", "os", "device"), ("count",),
                "pageviews per hour by browser, OS and device, ranked"),
    Measurement("1h", "countries", ("domain", "country"), ("count",),
                "pageviews per hour by country, ranked"),
    Measurement("1h", "events", ("domain", *EVENT_ROLLUP_TAGS), ("count",),
                "events per hour by name and props, ranked per name",
                sometimes=("label", "destination", "file")),
    Measurement("1h", "usage", ("action",), ("count",), "usage events per hour"),
    Measurement("1h", "usage_counts", ("category", "event"), ("count",), "`count` sums per hour"),
    Measurement("1h", "rejected", ("reason",), ("count",), "refused beacons per hour"),
    Measurement("1h", "mark", ("category",), ("name", "count"), "marks, copied for Grafana annotations"),
    Measurement("1h", "watermark", (), ("count",),
                "one point per run, at the end of the hours it rolled up (`flux/watermark.flux`)"),
    Measurement("1d", "traffic", ("domain",),
                ("pageviews", "visitors", "sessions", "bounces", "pages_per_session", "load_ms_median",
                 "engaged_views", "time_on_page_median", "visit_seconds", "engaged_visits"),
                "the site's daily figures",
                sometimes=("load_ms_median", "engaged_views", "time_on_page_median", "visit_seconds",
                           "engaged_visits")),
    Measurement("1d", "pages", ("domain", "page"), ("count",), "pageviews by page, ranked"),
    Measurement("1d", "sources", ("domain", "source"), ("count",), "pageviews by source, ranked"),
    Measurement("1d", "agents", ("domain", "browser", "os", "device"), ("count",),
                "pageviews by browser, OS and device, ranked"),
    Measurement("1d", "countries", ("domain", "country"), ("count",), "pageviews by country, ranked"),
    Measurement("1d", "timezones", ("domain", "timezone", "platform"), ("count",),
                "pageviews by time zone and platform, ranked"),
    Measurement("1d", "utms", ("domain", *UTM_TAGS), ("count",),
                "pageviews with a UTM value, by them, ranked", sometimes=UTM_TAGS),
    Measurement("1d", "events", ("domain", *EVENT_ROLLUP_TAGS), ("count",),
                "events by name and props, ranked per name", sometimes=("label", "destination", "file")),
    Measurement("1d", "engagement", ("domain", "page"), ("views", "median"),
                "time on page, per page, ranked (no `(other)` row)"),
    *(Measurement("1d", name, ("domain", key), VISIT_FIELDS, holds)
      for name, (key, holds) in VISIT_TABLES.items()),
    Measurement("1d", "usage_seen", ("category", "period"), ("distinct",), "`seen`, kept forever"),
    Measurement("1d", "watermark", (), ("count",),
                "one point per run, at the end of the hours it rolled up (`flux/watermark.flux`)"),
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


def carried(name: str) -> frozenset[str]:
    """Every key a raw measurement's points carry, as tag or field."""
    m = measurement("raw", name)
    return frozenset(m.tags) | frozenset(m.fields)


def carried_only_by(name: str, other: str) -> frozenset[str]:
    """Dimension keys raw measurement `name` carries and `other` does not (events' names and
    props; a pageview's source and UTM values): what a query may not mix across them."""
    return (carried(name) - carried(other)) & frozenset(DIMENSION_KEYS.values())


def rollup_tags(tier: str, name: str) -> frozenset[str]:
    """The tags a rollup measurement keeps besides the domain."""
    return frozenset(measurement(tier, name).tags) - {"domain"}


def breakdowns(tier: str) -> dict[str, frozenset[str]]:
    """The rollup measurements of `tier` that count pageviews by pageview keys, with the tags
    each keeps besides domain (the hourly `pageviews`: none, the site's total)."""
    pageview = carried("pageview")
    return {m.name: rollup_tags(tier, m.name) for m in measurements(tier)
            if m.fields == ("count",) and "domain" in m.tags and rollup_tags(tier, m.name) <= pageview}


def visit_breakdowns(tier: str) -> dict[str, frozenset[str]]:
    """The rollup measurements of `tier` that count whole visits, with the visit keys each keeps."""
    return {m.name: rollup_tags(tier, m.name) for m in measurements(tier) if m.fields == VISIT_FIELDS}


# Tags whose values the collector chooses from a closed set; every other tag of a rollup holds
# values the task ranked (ANALYTICS_TOP_VALUES per window, and `(other)`).
CLOSED_TAGS = frozenset({"domain", "event"})


def series_bound(tier: str, top_values: int, event_names: int) -> int:
    """The most series one site's beacons can create in `tier`: in the raw bucket over any time,
    in a rollup per window (hour, day, month). A series is what InfluxDB's index counts
    (`influxdb.cardinality()`): a measurement and tag set; its fields are stored beside it.
    Computed from settings alone; tests/storage/test_series_bounds.py floods a real influxd and
    checks InfluxDB's own count against it."""
    total = 0
    for m in measurements(tier):
        if "domain" not in m.tags:
            continue  # server-side usage: bounded by ANALYTICS_MAX_TAG_VALUES, not by beacons
        values = top_values + 1 if set(m.tags) - CLOSED_TAGS else 1
        names = event_names if "event" in m.tags else 1
        total += values * names
    return total


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
