"""A value computed by a function and kept for a while: InfluxDB lookups the hot paths repeat.

Why: the Stats API asks which sites exist and how far the rollup tasks got on every query, and the
writer asks which tasks exist after every late delivery; those answers change rarely, so each is
read once per `ttl` seconds per process instead of on every call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Expiring(Generic[T]):
    def __init__(self, compute: Callable[[], T], ttl: float) -> None:
        self._compute = compute
        self._ttl = ttl
        self._at = -float("inf")
        self._value: T | None = None

    def __call__(self) -> T:
        if self._value is None or time.monotonic() - self._at > self._ttl:
            self._value = self._compute()
            self._at = time.monotonic()
        return self._value

    def refresh(self, min_age: float) -> T:
        """Compute again now unless the value is younger than `min_age` seconds."""
        if self._value is None or time.monotonic() - self._at >= min_age:
            self._at = -float("inf")
        return self()
