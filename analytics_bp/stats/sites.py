"""Which sites exist, a site's first day with data, and its visitors right now.

Why apart from the query engine: these answer the dashboard's site list, `date_range: "all"` and
the realtime figure, each with its own cheap read, and none of them depends on the plan.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..beacons import domain_matches
from ..expiring import Expiring
from ..settings import Config
from .read import Reader

REALTIME_MINUTES = 5


class Sites:
    def __init__(self, cfg: Config, reader: Reader) -> None:
        self.cfg = cfg
        self.reader = reader
        self.zone = ZoneInfo(cfg.timezone)
        self.known = Expiring(self._find, ttl=60)  # asked by every query: read once a minute

    def including(self, site: object) -> list[str]:
        """The sites, read again (at most every 2 s) when `site` would be a new host under a
        wildcard domain: a new site answers seconds after its first visit, not a minute later."""
        known = self.known()
        if isinstance(site, str) and site not in known and domain_matches(site, self._wildcards()):
            known = self.known.refresh(min_age=2.0)
        return known

    def _wildcards(self) -> tuple[str, ...]:
        return tuple(d for d in self.cfg.permitted_domains if d.startswith("*."))

    def _find(self) -> list[str]:
        """Permitted exact hosts, plus hosts seen under a wildcard in the last 400 days."""
        exact = [d for d in self.cfg.permitted_domains if not d.startswith("*.")]
        patterns = self._wildcards()
        if not patterns:
            return sorted(exact)
        seen: set[str] = set()
        for bucket, days in ((self.cfg.rollup_buckets["1d"], 400), (self.cfg.bucket, 2)):
            rows = self.rows_if_bucket(
                'import "influxdata/influxdb/schema"\n'
                f'schema.tagValues(bucket: bucket, tag: "domain", start: -{days}d)', {"bucket": bucket})
            seen |= {str(r["_value"]) for r in rows}
        return sorted(set(exact) | {d for d in seen if domain_matches(d, patterns)})

    def first_day(self, site: str) -> date | None:
        """The first site day with data (for date_range "all")."""
        # The daily rollup holds every finished day; raw points are read only when it has none
        # (a new install), with first() per series, which InfluxDB answers from its index.
        for bucket, measurement, field_name in ((self.cfg.rollup_buckets["1d"], "traffic", "pageviews"),
                                                (self.cfg.bucket, "pageview", "count")):
            rows = self.rows_if_bucket(
                'from(bucket: bucket) |> range(start: 0) |> filter(fn: (r) => r._measurement == m '
                'and r._field == f and r.domain == site) |> first() |> keep(columns: ["_time"])',
                {"bucket": bucket, "m": measurement, "f": field_name, "site": site})
            if rows:
                first: datetime = min(r["_time"] for r in rows)
                return first.astimezone(self.zone).date()
        return None

    def realtime_visitors(self, site: str) -> int:
        """Distinct visitors of the last few minutes, from raw points."""
        flux = (f'from(bucket: bucket) |> range(start: -{REALTIME_MINUTES}m) '
                '|> filter(fn: (r) => r._measurement == "pageview" and r._field == "visitor" '
                'and r.domain == site) |> group() |> distinct() |> count()')
        rows = self.reader.query(flux, {"bucket": self.cfg.bucket, "site": site})
        return int(rows[0]["_value"]) if rows else 0

    def rows_if_bucket(self, flux: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Rows, or none when the bucket does not exist yet (`flask analytics setup` not run)."""
        try:
            return self.reader.query(flux, params)
        except Exception as err:
            if "could not find bucket" not in str(err):
                raise
            return []
