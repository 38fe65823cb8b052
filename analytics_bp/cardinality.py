"""Bound the distinct values of the few tags written straight from input: the domain of raw
points (ANALYTICS_MAX_DOMAINS) and the usage API's actions and categories (ANALYTICS_MAX_TAG_VALUES).

Why: InfluxDB 2 OSS enforces no series limit, and each new tag value is a new series forever (until
its shard expires). Values are admitted per (scope, tag) and per calendar month up to a cap, in a
`PeriodRegistry` shared by the workers of a host, so the cap holds across workers and restarts.
Past the cap a value becomes `(other)`. The registry renews each month. A beacon's other values
are fields, and the rollup tasks rank them instead (docs/schema.md, "Series bounds").
"""

from __future__ import annotations

import time
from pathlib import Path

from . import periods
from .points import valid_text
from .registry import PeriodRegistry

OTHER = "(other)"


class TagGuard:
    def __init__(self, directory: str, cap: int) -> None:
        self.cap = cap
        self.registry = PeriodRegistry(Path(directory) / "tags")
        self._month = ""
        self._month_checked = 0.0
        self._full: set[str] = set()  # keys at their cap this month: no disk read needed

    def admit(self, scope: str, tag: str, value: str, cap: int | None = None) -> str:
        """`value` if it is (or can still become) one of the first `cap` values, else `(other)`."""
        month = self._current_month()
        key = f"{scope}\x00{tag}"
        if self.registry.contains(month, key, value):
            return value
        if key in self._full:
            return OTHER
        value = valid_text(value)  # a lone surrogate must never fail the registry's write
        admitted, _, _ = self.registry.add(month, key, value, cap or self.cap)
        if admitted:
            return value
        self._full.add(key)
        return OTHER

    def _current_month(self) -> str:
        now = time.time()
        if now - self._month_checked >= 1.0:
            self._month_checked = now
            month = periods.key("month", now)
            if month != self._month:
                self._month = month
                self._full.clear()
        return self._month
