"""Answer a parsed Stats API query: exact now (raw points), cheap later (rollups).

The path of one query: stats/query.py parsed it; `plan` chooses the rollups and the days each
part answers (pure); `Reads` fetches each part with Flux from stats/flux.py and adds its records
into per-row, per-day parts; `answer` computes the metrics (stats/metrics.py), orders and pages.
This class only wires them, and keeps the site list, first day, realtime figure and server usage
(each its own module) behind the one object the dashboard holds.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from ..settings import Config
from . import server_usage
from .answer import answer
from .dates import Period
from .metrics import Components
from .plan import Plan, Watermark, plan
from .query import Query
from .read import Reader, Reads, Rows
from .sites import Sites


class Engine:
    def __init__(self, cfg: Config, reader: Reader, watermark: Watermark) -> None:
        self.cfg = cfg
        self.reader = reader
        self.watermark = watermark
        self.zone = ZoneInfo(cfg.timezone)
        self.reads = Reads(reader, cfg.bucket, self.zone)
        self._sites = Sites(cfg, reader)
        self.sites = self._sites.known

    def run(self, q: Query) -> dict[str, Any]:
        """`percentage` is read as visitors, beside one more read of the visitors without the
        dimensions (its denominator, as Plausible's: the same filters, no grouping)."""
        counted = replace(q, metrics=tuple(dict.fromkeys(
            "visitors" if m == "percentage" else m for m in q.metrics)))
        chosen, rows = self._rows(counted)
        total = 0
        if "percentage" in q.metrics:
            _, whole = self._rows(replace(counted, metrics=("visitors",), dimensions=(),
                                          order_by=(("visitors", "desc"),)))
            total = sum(c.visitors for c in whole.values())
        return answer(q, rows, chosen, self.cfg.bucket, self.zone, total)

    def _rows(self, q: Query) -> tuple[Plan, Rows]:
        chosen = plan(q, self.watermark, self.zone, self.cfg.raw_retention)
        rows: Rows = defaultdict(Components)
        if chosen.rollup is not None:
            for source in chosen.sources:
                self.reads.rollup(q, source, chosen.rollup, rows)
        if chosen.raw is not None:
            self.reads.raw(q, chosen.raw, rows)
        return chosen, rows

    def sites_with(self, site: object) -> list[str]:
        return self._sites.including(site)

    def first_day(self, site: str) -> date | None:
        return self._sites.first_day(site)

    def realtime_visitors(self, site: str) -> int:
        return self._sites.realtime_visitors(site)

    def usage(self, period: Period) -> dict[str, Any]:
        return server_usage.usage(self.cfg, self.reader, lambda: self.watermark("_1h"), period)
