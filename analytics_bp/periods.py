"""Calendar periods (UTC days and months): the one place their arithmetic lives.

Why one place: the salt store, the tag registry and `seen()` all need "which period is this, when
did it start, when does the next one start", and three copies of that arithmetic drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime

PERIODS = ("day", "month")


def key(period: str, now: float) -> str:
    """`2026-03-01` for a day, `2026-03` for a month."""
    moment = datetime.fromtimestamp(now, UTC)
    return moment.strftime("%Y-%m-%d" if period == "day" else "%Y-%m")


def start(period: str, now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    first = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "month":
        first = first.replace(day=1)
    return first.timestamp()


def end(period: str, now: float) -> float:
    """The start of the next period (32 days past a month's start is always in the next month)."""
    began = start(period, now)
    return start(period, began + 32 * 86400) if period == "month" else began + 86400
