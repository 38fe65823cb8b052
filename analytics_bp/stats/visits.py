"""Raw pageviews attributed to their visits, and the query's filters applied to them: pure, no I/O.

Why in Python and not in the query's Flux: a query for today reads at most the raw days the
daily rollup has not finished, and a visit must be seen whole before any filter applies (a visit
from google.com is all its pageviews, not its first), so the site's pageviews of those days are
read unfiltered and attributed here, the way the daily task's visits.flux builds its tables: a
visit is one session ID's pageviews in one site day; its entry page, source, UTM values and
visitor are its first pageview's, its exit page its last one's. A pageview without a session ID
belongs to no visit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from .. import schema

Record = dict[str, Any]
FROM_ENTRY = ("source", *schema.UTM_TAGS, *schema.AGENT_TAGS, "visitor")


def attributed(records: Iterable[Record], zone: ZoneInfo) -> Iterator[tuple[Record, bool]]:
    """Each pageview that has a session, with its visit's values in place of its own, and whether
    its visit bounced (one pageview that day)."""
    visits: dict[tuple[date, str], list[Record]] = defaultdict(list)
    for rec in records:
        if rec.get("sess_id"):
            visits[(rec["_time"].astimezone(zone).date(), str(rec["sess_id"]))].append(rec)
    for views in visits.values():
        views.sort(key=lambda r: r["_time"])
        entry, exit_ = views[0], views[-1]
        shared = {k: entry.get(k) for k in FROM_ENTRY}
        shared.update(entry_page=entry.get("page"), exit_page=exit_.get("page"))
        for rec in views:
            yield {**rec, **shared}, len(views) == 1
