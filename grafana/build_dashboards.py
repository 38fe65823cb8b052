"""Generate grafana/dashboards/*.json (provisioning) and grafana/import/*.json (import by hand)
with Grafana Labs' typed builder, grafana-foundation-sdk, from the panel list below.

Why generated: every panel's Flux lives in panels.py once, readable; the SDK's types check the
structure (a panel without a type, a unit on the wrong object, a misspelt option do not build);
tests/rollups/test_grafana.py parses the output back with the SDK, runs every query against real
rollups, and checks the committed JSON matches this file's output.
Run `python grafana/build_dashboards.py` after changing a panel.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import panels as q
from babel import Locale
from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import dashboard as model

from analytics_bp.rollups import flux_string

ROOT = Path(__file__).parent
OUT = ROOT / "dashboards"
IMPORT = ROOT / "import"
# Provisioning (grafana/provisioning/datasources) creates the datasource with this uid.
UID = "analytics-influxdb"
# An imported dashboard asks for its datasource: Grafana replaces ${DS_ANALYTICS} everywhere.
INPUT = "DS_ANALYTICS"
# A site's days start at its midnight (ANALYTICS_TIMEZONE); `export grafana` writes the zone.
TIMEZONE = "utc"


class FluxQuery(cogvariants.Dataquery):
    """An InfluxDB (Flux) target. The SDK has no InfluxDB package, so this is its dataquery
    variant, registered below so that the SDK's parser reads targets back as this type."""

    def __init__(self, query: str = "", ref_id: str = "A",
                 datasource: model.DataSourceRef | None = None) -> None:
        self.query = query
        self.ref_id = ref_id
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"refId": self.ref_id, "query": self.query}
        if self.datasource is not None:
            out["datasource"] = self.datasource
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        ref = data.get("datasource")
        return cls(data["query"], data.get("refId", "A"),
                   model.DataSourceRef.from_json(ref) if isinstance(ref, dict) else None)


class Flux(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, query: str, datasource: model.DataSourceRef) -> None:
        self._internal = FluxQuery(query, "A", datasource)

    def build(self) -> FluxQuery:
        return self._internal


class FluxAnnotationTarget(model.AnnotationTarget):
    """The SDK's annotation target only has the Grafana datasource's fields; an InfluxDB
    annotation is a query."""

    def __init__(self, query: str) -> None:
        super().__init__()
        self.query = query

    def to_json(self) -> dict[str, object]:
        return {"refId": "Anno", "query": self.query}


class AnnotationFlux(cogbuilder.Builder[model.AnnotationTarget]):
    def __init__(self, query: str) -> None:
        self._internal = FluxAnnotationTarget(query)

    def build(self) -> model.AnnotationTarget:
        return self._internal


def register() -> None:
    """Teach the SDK's parser the Grafana panels and our InfluxDB target (tests parse with it)."""
    register_default_plugins()
    cogruntime.register_dataquery_variant(cogruntime.DataqueryConfig("influxdb", FluxQuery.from_json))


@dataclass(frozen=True)
class Panel:
    kind: str  # "timeseries" or "table"
    title: str
    query: str
    unit: str = "short"
    decimals: int = 0
    # column -> (display name, unit, decimals) for tables; one series' display name for charts
    columns: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    description: str = ""


COUNT = ("short", 0)
PCT = ("percent", 0)  # bounce rate: a whole percent, as the Stats API's
SECONDS = ("s", 0)


def cols(**named: tuple[str, tuple[str, int]]) -> dict[str, tuple[str, str, int]]:
    return {name: (label, unit, decimals) for name, (label, (unit, decimals)) in named.items()}


SITE = ("Site", ("string", 0))
PAGEVIEWS = ("Pageviews", COUNT)
VISIT_COLUMNS = {"visitors": ("Visitors", COUNT), "visits": ("Visits", COUNT),
                 "pageviews": PAGEVIEWS, "bounce_rate": ("Bounce rate", PCT)}

TRAFFIC = [
    Panel("timeseries", "Pageviews", q.hourly("pageviews", ["domain"]),
          description="Pageviews per hour (summed per point when Grafana draws wider windows)."),
    Panel("timeseries", "Unique visitors per day", q.daily("visitors")),
    Panel("timeseries", "Visits per day", q.daily("sessions")),
    Panel("timeseries", "Bounce rate", q.BOUNCE, "percent", 0,
          description="Visits of one pageview, of all visits of the day."),
    Panel("timeseries", "Views per visit", q.daily("pages_per_session"), "short", 2),
    Panel("timeseries", "Median load time", q.daily("load_ms_median"), "ms", 0),
    Panel("timeseries", "Median time on page", q.TIME_ON_PAGE_SERIES, "s", 0),
    Panel("timeseries", "Visit duration", q.VISIT_DURATION, "s", 0,
          description="Engaged seconds per visit that sent engaged time."),
    Panel("table", "Top pages", q.pageviews_by("pages", ["page"], per_site=True),
          columns=cols(domain=SITE, page=("Page", ("string", 0)), pageviews=PAGEVIEWS)),
    Panel("table", "Entry pages", q.visit_table("entry_pages", "entry_page"),
          columns=cols(domain=SITE, entry_page=("Entry page", ("string", 0)), **VISIT_COLUMNS)),
    Panel("table", "Exit pages", q.visit_table("exit_pages", "exit_page"),
          columns=cols(domain=SITE, exit_page=("Exit page", ("string", 0)), **VISIT_COLUMNS)),
    Panel("table", "Sources", q.visit_table("visit_sources", "source", where='r.source != "internal"'),
          columns=cols(domain=SITE, source=("Source", ("string", 0)), **VISIT_COLUMNS),
          description="Visits by the referrer of their first pageview; a visit that began on "
                      "another page of the site has no source of its own and is not listed."),
    Panel("table", "Browsers, OS and devices", q.pageviews_by("agents", ["browser", "os", "device"]),
          columns=cols(browser=("Browser", ("string", 0)), os=("OS", ("string", 0)),
                       device=("Device", ("string", 0)), pageviews=PAGEVIEWS)),
    Panel("table", "Countries", q.pageviews_by("countries", ["country"]),
          columns=cols(country=("Country", ("string", 0)), pageviews=PAGEVIEWS)),
    Panel("table", "Time zones and platforms", q.TIMEZONES,
          columns=cols(timezone=("Time zone", ("string", 0)), platform=("Platform", ("string", 0)),
                       pageviews=PAGEVIEWS)),
    Panel("table", "Time on page by page", q.TIME_ON_PAGE,
          columns=cols(domain=SITE, page=("Page", ("string", 0)), pageviews=PAGEVIEWS,
                       time_on_page=("Median time on page", SECONDS))),
]

EVENTS = [
    Panel("timeseries", "Events", q.hourly("events", ["event"])),
    Panel("table", "Events with notes", q.events_by(["event", "label"], "events"),
          columns=cols(event=("Event", ("string", 0)), label=("Note", ("string", 0)),
                       events=("Events", COUNT))),
    Panel("table", "Outbound links by destination",
          q.events_by(["domain", "destination"], "clicks", event="outbound"),
          columns=cols(domain=SITE, destination=("Destination", ("string", 0)),
                       clicks=("Clicks", COUNT))),
    Panel("table", "Downloads by file",
          q.events_by(["domain", "file"], "downloads", event="download"),
          columns=cols(domain=SITE, file=("File", ("string", 0)), downloads=("Downloads", COUNT))),
]

USAGE = [
    Panel("timeseries", "Usage by action", q.hourly("usage", ["action"])),
    Panel("table", "Counts by category and event",
          q.USAGE_COUNTS,
          columns=cols(category=("Category", ("string", 0)), event=("Event", ("string", 0)),
                       count=("Count", COUNT))),
    Panel("table", "Distinct identifiers per period", q.DISTINCT_IDS,
          columns=cols(category=("Category", ("string", 0)), period=("Period", ("string", 0)),
                       distinct=("Distinct", COUNT))),
    Panel("timeseries", "Rejected beacons by reason", q.hourly("rejected", ["reason"])),
]

# (uid, title, panels, whether its panels read the domain variable)
DASHBOARDS: dict[str, tuple[str, str, list[Panel], bool]] = {
    "traffic": ("analytics-traffic", "Analytics: traffic", TRAFFIC, True),
    "events": ("analytics-events", "Analytics: events", EVENTS, True),
    "usage": ("analytics-usage", "Analytics: server usage", USAGE, False),
}

# A series per domain (or event, action, reason): named after it, not "_value {domain=...}".
SERIES_NAME = {"domain": "${__field.labels.domain}", "event": "${__field.labels.event}",
               "action": "${__field.labels.action}", "reason": "${__field.labels.reason}"}


def country_names() -> dict[str, str]:
    """ISO 3166 code -> "Germany (DE)", the built-in dashboard's form, from CLDR (Babel): the
    codes the collector stores, named from maintained data."""
    territories = Locale("en").territories
    return {code: f"{name} ({code})" for code, name in sorted(territories.items())
            if len(code) == 2 and code.isalpha()}


def display(name: str, unit: str, decimals: int) -> list[model.DynamicConfigValue]:
    props = [model.DynamicConfigValue("displayName", name)]
    if unit != "string":
        props += [model.DynamicConfigValue("unit", unit), model.DynamicConfigValue("decimals", decimals)]
    return props


def build_panel(spec: Panel, ds: model.DataSourceRef, index: int) -> cogbuilder.Builder[model.Panel]:
    grid = model.GridPos(h=8, w=12, x=12 * (index % 2), y=8 * (index // 2))
    target = Flux(spec.query, ds)
    if spec.kind == "timeseries":
        by = next((k for k in SERIES_NAME if f'"{k}"' in spec.query.split("group(columns:")[-1]), "")
        chart = (timeseries.Panel().id(index + 1).title(spec.title).datasource(ds).grid_pos(grid)
                 .with_target(target).unit(spec.unit).decimals(spec.decimals))
        if by:
            chart = chart.display_name(SERIES_NAME[by])
        return chart.description(spec.description) if spec.description else chart
    grid_table = (table.Panel().id(index + 1).title(spec.title).datasource(ds).grid_pos(grid)
                  .with_target(target))
    for column, (name, unit, decimals) in spec.columns.items():
        grid_table = grid_table.override_by_name(column, display(name, unit, decimals))
    if "country" in spec.columns:
        names = {code: model.ValueMappingResult(text=text) for code, text in country_names().items()}
        grid_table = grid_table.override_by_name("country", [
            *display(*spec.columns["country"]),
            model.DynamicConfigValue("mappings", [model.ValueMap(options=names)])])
    return grid_table.description(spec.description) if spec.description else grid_table


def build(name: str, ds: model.DataSourceRef) -> model.Dashboard:
    uid, title, specs, with_domain = DASHBOARDS[name]
    dash = (board.Dashboard(title).uid(uid).tags(["analytics"]).editable().version(1)
            .time("now-30d", "now").timezone(TIMEZONE)
            .annotation(board.AnnotationQuery().name("Marks").datasource(ds).enable(True)
                        .icon_color("purple").target(AnnotationFlux(q.MARKS))))
    if with_domain:
        dash = dash.with_variable(
            board.QueryVariable("domain").label("Site").datasource(ds).query(q.DOMAINS)
            .include_all(True).multi(True).refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .current(model.VariableOption(text="All", value="$__all")))
    for index, spec in enumerate(specs):
        dash = dash.with_panel(build_panel(spec, ds, index))
    return dash.build()


def render(name: str, for_import: bool = False) -> str:
    """One dashboard as JSON: for provisioning (the fixed datasource uid), or for Grafana's
    import page (`__inputs`: the importer picks the datasource, Grafana fills in its uid)."""
    ds = model.DataSourceRef(type_val="influxdb", uid="${" + INPUT + "}" if for_import else UID)
    out: dict[str, Any] = json.loads(json.dumps(build(name, ds), cls=JSONEncoder))
    if for_import:
        out = {"__inputs": [{"name": INPUT, "label": "Analytics InfluxDB", "type": "datasource",
                             "pluginId": "influxdb", "pluginName": "InfluxDB",
                             "description": "The InfluxDB (Flux) datasource of the analytics bucket"}],
               "__requires": [{"type": "datasource", "id": "influxdb", "name": "InfluxDB",
                               "version": "1.0.0"}],
               **out}
    return json.dumps(out, indent=2, ensure_ascii=False) + "\n"


def render_all() -> dict[Path, str]:
    """Every generated file, by path: the provisioned dashboards and their import twins."""
    return {**{OUT / f"{name}.json": render(name) for name in DASHBOARDS},
            **{IMPORT / f"{name}.json": render(name, for_import=True) for name in DASHBOARDS}}


def bind(query: str, bucket: str, start: str, stop: str, window: str = "1d",
         domain_regex: str = ".*") -> str:
    """Do what Grafana does before sending a panel's query: bind v.* and ${domain:regex}.

    Tests and the benchmark run panels exactly as shipped through this one function.
    """
    prelude = (f"v = {{timeRangeStart: {start}, timeRangeStop: {stop}, windowPeriod: {window}, "
               f"defaultBucket: {flux_string(bucket)}}}")
    lines = query.replace("${domain:regex}", domain_regex).splitlines()
    imports = [ln for ln in lines if ln.startswith("import ")]
    rest = [ln for ln in lines if not ln.startswith("import ")]
    return "\n".join([*imports, prelude, *rest])


def panel_query(filename: str, title: str) -> str:
    """The first query of the panel `title` in the committed dashboard `filename`."""
    dash = json.loads((OUT / filename).read_text())
    return str(next(p["targets"][0]["query"] for p in dash["panels"] if p["title"] == title))


def describe() -> str:
    """Each dashboard as a reader would review it without Grafana: its panels, their units and
    the measurements each query reads (`python grafana/build_dashboards.py --describe`)."""
    out = []
    for uid, title, specs, with_domain in DASHBOARDS.values():
        out += [f"### {title} (`{uid}`{', variable `domain`' if with_domain else ''})", "",
                "| Panel | Kind | Unit | Reads |", "|---|---|---|---|"]
        for spec in specs:
            units = (f"{spec.unit}, {spec.decimals} decimals" if spec.kind == "timeseries" else
                     "; ".join(f"{label} ({unit})" for label, unit, _ in spec.columns.values()
                               if unit != "string"))
            reads = sorted(set(re.findall(r'(?:r\._measurement ==|points\(measurement:) "(\w+)"', spec.query))
                           - {"watermark"})
            out.append(f"| {spec.title} | {spec.kind} | {units} | {', '.join(reads)} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    if "--describe" in sys.argv:
        print(describe())
        raise SystemExit(0)
    for path, text in render_all().items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        print("wrote", path.relative_to(ROOT.parent))
