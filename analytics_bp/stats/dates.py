"""A Stats API `date_range` as Plausible's Stats API v2 defines it: pure, no I/O.

Why apart: the periods decide which points count, and users compare them with Plausible's, whose
shortcuts changed over time. These follow Plausible's current query parser and docs (read in
November 2026, plausible/analytics `lib/plausible/stats/query_parser.ex`, docs `stats-api.md`):
`day` is today, `Nd` the N whole days before today (today not included), `Nmo` the N whole
calendar months before the current one, `month` and `year` the whole current month and year,
`all` from the first day with data to today; two ISO dates are whole site days, two ISO
datetimes (with their UTC offsets) the seconds between them, both ends included. `24h` (ours,
beside Plausible's `realtime`) is the 24 hours up to now.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .filters import quote

SHORTCUTS = ("day", "24h", "7d", "28d", "30d", "91d", "month", "6mo", "12mo", "year", "all")
MAX_DAYS_SHORTCUT = 5_000  # Plausible's own bounds on "Nd" and "Nmo"
MAX_MONTHS_SHORTCUT = 100
MAX_SPAN_DAYS = 5 * 366
SECOND = timedelta(seconds=1)
_LAST_N = re.compile(r"([1-9][0-9]{0,3})(d|mo)")


class DateRangeError(ValueError):
    """A date_range the API refuses (answered as 400, with this reason)."""


@dataclass(frozen=True)
class Period:
    """[first, after) as aware datetimes in the site's zone."""

    first: datetime
    after: datetime

    @property
    def last(self) -> datetime:
        """The last second inside the period (what Plausible echoes as the range's end)."""
        return self.after - SECOND

    @property
    def first_day(self) -> date:
        return self.first.date()

    @property
    def last_day(self) -> date:
        return self.last.date()

    @property
    def whole_days(self) -> bool:
        """True when both ends fall on the site's midnights: only then can daily rollups answer."""
        return _is_midnight(self.first) and _is_midnight(self.after)

    def as_json(self) -> list[str]:
        return [self.first.isoformat(), self.last.isoformat()]


def _is_midnight(moment: datetime) -> bool:
    return moment.timetz().replace(tzinfo=None) == time()


def days(first: date, last: date, zone: ZoneInfo) -> Period:
    """Whole site days first..last, both included."""
    return Period(datetime.combine(first, time(), zone),
                  datetime.combine(last + timedelta(days=1), time(), zone))


FirstDay = Callable[[], date | None]


def parse(value: Any, now: datetime, zone: ZoneInfo, first_day: FirstDay) -> Period:
    """A shortcut, two ISO dates or two ISO datetimes -> the period; `now` is aware, `first_day()`
    finds the site's first day with data (asked only for "all")."""
    if isinstance(value, str):
        return _shortcut(value, now.astimezone(zone), zone, first_day)
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise DateRangeError('date_range must be a shortcut, ["YYYY-MM-DD", "YYYY-MM-DD"] or two '
                             "ISO 8601 datetimes with their UTC offsets")
    whole_days = all(len(v) == 10 for v in value)
    period = _dates(value, zone) if whole_days else _datetimes(value, zone)
    if period.after <= period.first:
        raise DateRangeError("date_range ends before it starts")
    if period.after - period.first > timedelta(days=MAX_SPAN_DAYS):
        raise DateRangeError(f"date_range spans more than {MAX_SPAN_DAYS} days")
    return period


def _dates(value: list[str], zone: ZoneInfo) -> Period:
    try:
        first, last = (date.fromisoformat(v) for v in value)
    except ValueError:
        raise DateRangeError('date_range dates must be ISO dates such as "2026-03-01"') from None
    return days(first, last, zone)  # parse() refuses one that ends before it starts


def _datetimes(value: list[str], zone: ZoneInfo) -> Period:
    """Both ends included, to the second (Plausible keeps seconds): [first, last + 1 s)."""
    moments = []
    for text in value:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise DateRangeError(f"date_range: {quote(text)} is neither an ISO date nor an ISO "
                                 "8601 datetime") from None
        if moment.tzinfo is None or len(text) < 19:
            raise DateRangeError(f"date_range: {quote(text)} needs its UTC offset, such as "
                                 '"2026-03-01T12:00:00+01:00" or "…Z"')
        moments.append(moment.replace(microsecond=0).astimezone(zone))
    return Period(moments[0], moments[1] + SECOND)


def _shortcut(value: str, now: datetime, zone: ZoneInfo, first_day: FirstDay) -> Period:
    today = now.date()
    if value == "day":
        return days(today, today, zone)
    if value == "24h":
        stop = now.replace(microsecond=0)
        return Period(stop - timedelta(hours=24), stop + SECOND)
    if value == "month":
        return days(today.replace(day=1), _month_start(today, 1) - timedelta(days=1), zone)
    if value == "year":
        return days(date(today.year, 1, 1), date(today.year, 12, 31), zone)
    if value == "all":
        return days(min(first_day() or today, today), today, zone)
    match = _LAST_N.fullmatch(value)
    if match:
        n, unit = int(match.group(1)), match.group(2)
        if unit == "d" and n <= MAX_DAYS_SHORTCUT:
            return days(today - timedelta(days=n), today - timedelta(days=1), zone)
        if unit == "mo" and n <= MAX_MONTHS_SHORTCUT:
            return days(_month_start(today, -n), _month_start(today, 0) - timedelta(days=1), zone)
    raise DateRangeError(f"unknown date_range {quote(value)}; one of {', '.join(SHORTCUTS)}, "
                         f"any \"Nd\" (N up to {MAX_DAYS_SHORTCUT}) or \"Nmo\" (N up to "
                         f"{MAX_MONTHS_SHORTCUT}), [\"YYYY-MM-DD\", \"YYYY-MM-DD\"] or two ISO "
                         "8601 datetimes")


def _month_start(today: date, months: int) -> date:
    """The first day of the month `months` after today's (negative: before)."""
    index = today.year * 12 + today.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def week_start(day: date, period_first: date) -> date:
    """A day's week as Plausible labels it: its Monday, or the period's first day when the
    Monday falls before the period."""
    return max(day - timedelta(days=day.weekday()), period_first)


def auto_time_dimension(period: Period) -> str:
    """Plausible's `time`: hours up to 48 hours, days up to 40 days, weeks up to 52 weeks, else
    months."""
    span = period.last - period.first
    if span <= timedelta(hours=48):
        return "time:hour"
    if span <= timedelta(days=40):
        return "time:day"
    if span.days // 7 <= 52:
        return "time:week"
    return "time:month"
