"""Up to when each rollup is complete, from its task's last finished run (cached briefly).

Why from the task's runs and not from the rollup's newest point: a day with no traffic writes no
point, yet it is complete; and a point of today's partial figures does not make today complete.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..expiring import Expiring

TASK_OF_SUFFIX = {"_1d": "daily", "_1h": "hourly"}


class Watermarks:
    def __init__(self, tasks: Callable[[], list[dict[str, Any]]], bucket: str, ttl: float = 30) -> None:
        self._bucket = bucket
        self._marks = Expiring(lambda: self._read(tasks()), ttl)

    @staticmethod
    def _read(tasks: list[dict[str, Any]]) -> dict[str, datetime]:
        # a run covers the complete hours before its scheduled time
        return {t["name"]: t["last_run"].replace(minute=0, second=0, microsecond=0)
                for t in tasks if isinstance(t.get("last_run"), datetime)}

    def __call__(self, suffix: str) -> datetime | None:
        return self._marks().get(f"{self._bucket}_{TASK_OF_SUFFIX[suffix]}")
