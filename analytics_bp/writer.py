"""What the collector and the usage API need from a writer: four members, nothing of its threads.

Why a protocol: the collector and the usage API are tested and benchmarked without the sink, and
the demo month feeds the real collector a writer that only keeps lines; sink.Sink is the real one.
"""

from __future__ import annotations

from typing import Protocol

from .points import Clock, CounterKey


class Writer(Protocol):
    @property
    def accepting(self) -> bool:
        """False when the spool is full: answer 503 rather than drop data."""
        ...

    @property
    def clock(self) -> Clock: ...

    def write(self, line: str) -> None: ...

    def add_count(self, key: CounterKey, n: int = 1) -> None: ...
