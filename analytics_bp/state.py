"""Everything one app's analytics holds: the one entry in `app.extensions["analytics"]`.

Why its own module: the views, the usage API, the CLI and the dashboard all need the same typed
state, and none of them should import the Flask extension (which imports them) to get it. What the
collector and the usage API need from the writer is the `Writer` protocol, so they depend on four
members (writer.Writer), not on the sink's threads and spool.

Per process: the writer and the Stats API's InfluxDB client are created on first use in each
process, after gunicorn's fork (threads do not survive a fork).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from flask import current_app

from . import enrich, privacy
from .cardinality import TagGuard
from .collector import Collector
from .influx import InfluxAdmin, InfluxTarget
from .settings import Config
from .sink import Sink
from .stats_engine import Engine, Watermarks
from .usage import TrackDecorator, Usage
from .writer import Writer

__all__ = ["AnalyticsState", "Writer", "close_all", "current_state"]


_STATES: weakref.WeakSet[AnalyticsState] = weakref.WeakSet()


class AnalyticsState:
    """One app's analytics: settings, salts, tag guard, collector, usage API, per-process writer."""

    def __init__(self, config: Config, target: InfluxTarget,
                 dashboard_auth: Callable[[], bool] | None = None) -> None:
        self.config = config
        self.target = target
        self.dashboard_auth = dashboard_auth
        self.salts = privacy.SaltStore(config.salt_dir, config.salt_period)
        self.guard = TagGuard(config.state_dir, config.max_tag_values)
        self.collector = Collector(config, self.sink, self.salts, self.guard, enrich.CountryLookup())
        self.usage = Usage(config, self.sink, self.salts, self.guard)
        self._sink: Sink | None = None
        self._sink_pid = 0
        self._engine: Engine | None = None
        self._engine_pid = 0
        self._lock = threading.Lock()
        _STATES.add(self)

    def sink(self) -> Sink:
        """This process's writer, started on first use after fork. Side effect, on purpose: the
        first writer a host ever starts for this bucket records the `golive` mark."""
        sink = self._sink
        if sink is not None and self._sink_pid == os.getpid():
            return sink
        with self._lock:
            started = self._sink is None or self._sink_pid != os.getpid()
            if started:
                cfg = self.config
                self._sink = Sink(self.target, cfg.spool_dir, cfg.spool_max_bytes,
                                  cfg.flush_interval, cfg.batch_size, max_buffered=cfg.max_buffered,
                                  set_aside_retention=set_aside_retention(cfg))
                self._sink_pid = os.getpid()
            sink = self._sink
        assert sink is not None
        if started:
            self.usage.mark_golive_once()
        return sink

    def stats(self) -> Engine:
        """This process's Stats API engine (its InfluxDB client is created after fork)."""
        with self._lock:
            if self._engine is None or self._engine_pid != os.getpid():
                t = self.target
                admin = InfluxAdmin(t.url, t.org, t.token)
                prefix = self.config.bucket + "_"
                self._engine = Engine(self.config, admin,
                                      Watermarks(lambda: admin.tasks(prefix), self.config.bucket))
                self._engine_pid = os.getpid()
            return self._engine

    def close(self) -> None:
        """Flush and deliver what this process holds (gunicorn worker_exit, tests, atexit)."""
        with self._lock:
            sink, self._sink = self._sink, None
            owned = self._sink_pid == os.getpid()
        if sink is not None and owned:
            sink.close()

    # The server-side usage API (seeds 000 and 001), bound to this app.
    def log_event(self, module: str, func: str, user_id: str | None, **fields: Any) -> None:
        self.usage.log_event(module, func, user_id, **fields)

    def get_pseudonymized_user_id(self, user_id: str | None) -> str:
        return self.usage.pseudonym(user_id)

    def count(self, event: str, category: str, n: int = 1) -> None:
        self.usage.count(event, category, n)

    def seen(self, identifier: str, category: str) -> bool:
        return self.usage.seen(identifier, category)

    def mark(self, name: str, category: str = "timeline") -> None:
        self.usage.mark(name, category)

    def track(self, action: str) -> TrackDecorator:
        self.usage.check_secret()  # bound to an app: a missing secret fails at decoration time
        return self.usage.track(action)


def set_aside_retention(cfg: Config) -> int:
    """Lines set aside in the spool are kept as long as raw points, and never more than 30 days."""
    month = 30 * 86400
    return min(cfg.raw_retention, month) if cfg.raw_retention else month


def current_state() -> AnalyticsState:
    """The state of the app handling this request (or in this app context)."""
    state = current_app.extensions.get("analytics")
    if not isinstance(state, AnalyticsState):
        raise RuntimeError("analytics is not initialised for this app: call Analytics(app) or "
                           "analytics.init_app(app) first")
    return state


def close_all() -> None:
    for state in list(_STATES):
        state.close()
