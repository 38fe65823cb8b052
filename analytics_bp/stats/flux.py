"""The Flux text of the Stats API's reads, and their parameters: pure, no I/O.

Why apart: only names from the query's vocabularies (stats/query.py) and from this package shape
the text; every caller value (site, filter values, times, bucket) goes into the parameters, which
InfluxDB binds as values, never as code. Keeping the text here lets a unit test check that
property for any query, without InfluxDB.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import schema
from . import filters as filtering
from .filters import Logic, Node
from .plan import Source
from .query import TAG_DIMENSIONS, Query

PRELUDE = 'import "regexp"\nimport "strings"\n'
RAW_FIELDS = {m.name: frozenset(m.fields) for m in schema.measurements("raw")}


@dataclass(frozen=True)
class Read:
    """One Flux query and its parameters."""

    flux: str
    params: dict[str, Any]


def filter_expr(nodes: Iterable[Node], params: dict[str, Any], compiled: list[str]) -> str:
    """`filter(fn:)` body for the query's filters (stats/filters.py has their meaning, and the
    same tests in Python); values go in as parameters p0, p1, …, and each regular expression is
    compiled once, as a statement appended to `compiled`, not once per row."""
    return " and ".join(_expr(node, params, compiled) for node in nodes) or "true"


def _expr(node: Node, params: dict[str, Any], compiled: list[str]) -> str:
    if isinstance(node, Logic):
        if node.op == "not":
            return f"(not {_expr(node.children[0], params, compiled)})"
        return "(" + f" {node.op} ".join(_expr(c, params, compiled) for c in node.children) + ")"
    column = f"r.{node.tag}"
    subject = column if node.case_sensitive else f"strings.toLower(v: {column})"
    tests = []
    for value in node.values:
        name = f"p{len(params)}"
        if node.positive == "matches":
            params[name] = filtering.pattern_of(node, value)
            compiled.append(f"re_{name} = regexp.compile(v: {name})")
            tests.append(f"regexp.matchRegexpString(r: re_{name}, v: {column})")
            continue
        params[name] = value if node.case_sensitive else value.lower()
        tests.append(f"{subject} == {name}" if node.positive == "is"
                     else f"strings.containsStr(v: {subject}, substr: {name})")
    found = f"(exists {column} and (" + " or ".join(tests) + "))"
    return f"(not {found})" if node.negated else found


def _with_compiled(compiled: list[str]) -> str:
    return "".join(line + "\n" for line in compiled)


def rollup(q: Query, bucket: str, source: Source, start: datetime, stop: datetime) -> Read:
    """The site's rows of one rollup measurement in [start, stop) passing the query's filters."""
    params: dict[str, Any] = {"bucket": bucket, "site": q.site_id, "start": start, "stop": stop,
                              "m": source.measurement}
    compiled: list[str] = []
    where = filter_expr(q.filters, params, compiled)
    flux = _with_compiled(compiled) + ("from(bucket: bucket) |> range(start: start, stop: stop) "
            "|> filter(fn: (r) => r._measurement == m and r.domain == site) "
            f"|> filter(fn: (r) => {where})")
    if source.kind in ("count", "visits") and q.time_dimension is None:
        # Sum in InfluxDB: one row per combination instead of one per day and combination.
        tags = [TAG_DIMENSIONS[d] for d in q.dimensions] + (["_field"] if source.kind == "visits" else [])
        flux += f" |> group(columns: {json.dumps(tags)}) |> sum() |> group()"
    elif source.kind == "engagement":
        # One row per page and day, and only the four columns used: a month of a site's pages
        # is thousands of rows, and the client's cost is per cell.
        flux += (' |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value") '
                 '|> keep(columns: ["_time", "page", "median", "views"]) |> group()')
    return Read(PRELUDE + flux, params)


def raw_points(q: Query, bucket: str, measurement: str, start: datetime, stop: datetime,
               fields: tuple[str, ...]) -> Read:
    """The site's raw points of one measurement in [start, stop) passing the query's filters,
    pivoted to one row per point with `fields` (names from this package) and the query's
    dimension and filter keys as columns.

    The filters follow the pivot: a visitor-controlled value is a field of the raw point (the
    catalogue's choice, which bounds the raw bucket's series), so it is a column only once the
    point's fields are side by side. A point written by 0.3.0 holds the same values as tags,
    which the pivot keeps as columns of the same names: both read alike."""
    params: dict[str, Any] = {"bucket": bucket, "site": q.site_id, "start": start, "stop": stop,
                              "m": measurement}
    compiled: list[str] = []
    where = filter_expr(q.filters, params, compiled)
    wanted = (*fields, *sorted(q.tags & RAW_FIELDS[measurement]))
    picked = " or ".join(f'r._field == "{name}"' for name in dict.fromkeys(wanted))
    return Read(PRELUDE + _with_compiled(compiled) +
                "from(bucket: bucket) |> range(start: start, stop: stop) "
                f"|> filter(fn: (r) => r._measurement == m and r.domain == site and ({picked})) "
                '|> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value") '
                f"|> filter(fn: (r) => {where}) "
                '|> drop(columns: ["_start", "_stop", "_measurement"]) |> group()', params)


def session_ids(site: str, bucket: str, start: datetime, stop: datetime) -> Read:
    """Every raw pageview's session ID and time, unfiltered (a bounce is the whole session's)."""
    return Read(PRELUDE +
                "from(bucket: bucket) |> range(start: start, stop: stop) "
                '|> filter(fn: (r) => r._measurement == "pageview" and r.domain == site '
                'and r._field == "sess_id") |> keep(columns: ["_time", "_value"]) |> group()',
                {"bucket": bucket, "site": site, "start": start, "stop": stop})
