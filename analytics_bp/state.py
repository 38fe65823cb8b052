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
from pathlib import Path
from typing import Any

from flask import current_app

from . import enrich, privacy, rollups, settings
from .backfill import Backfill
from .cardinality import TagGuard
from .collector import Collector
from .expiring import Expiring
from .influx import InfluxAdmin, InfluxTarget
from .sessions import FailureThrottle, SessionStore
from .settings import Config
from .sink import Sink
from .stats.engine import Engine
from .stats.watermarks import Watermarks
from .usage import TrackDecorator, Usage
from .writer import Writer

__all__ = ["AnalyticsState", "Writer", "close_all", "current_state"]


_STATES: weakref.WeakSet[AnalyticsState] = weakref.WeakSet()
SESSION_MAX_AGE = 7 * 86400


class AnalyticsState:
    """One app's analytics: settings, salts, tag guard, collector, usage API, per-process writer."""

    def __init__(self, config: Config, target: InfluxTarget,
                 dashboard_auth: Callable[[], bool] | None = None) -> None:
        settings.check_state_dirs(config)  # before any salt, registry or spool file is opened
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
        self._admin: InfluxAdmin | None = None
        self._admin_pid = 0
        self._lock = threading.Lock()
        self.auth_throttle = FailureThrottle()
        self._sessions: SessionStore | None = None
        if config.dashboard_token:
            self.sessions()  # a new token ends every earlier session now
        _STATES.add(self)

    def sessions(self) -> SessionStore:
        """The dashboard's sign-in sessions (sessions.py), in the private state folder."""
        if self._sessions is None:
            self._sessions = SessionStore(Path(self.config.state_dir) / "dashboard",
                                          self.config.dashboard_token, SESSION_MAX_AGE)
        return self._sessions

    def sink(self) -> Sink:
        """This process's writer, started on first use after fork. Side effect, on purpose: the
        first writer ever started for this bucket records the `golive` mark (once per bucket)."""
        sink = self._sink
        if sink is not None and self._sink_pid == os.getpid():
            return sink
        with self._lock:
            started = self._sink is None or self._sink_pid != os.getpid()
            if started:
                cfg = self.config
                self._sink = Sink(self.target, cfg.spool_dir, cfg.spool_max_bytes,
                                  cfg.flush_interval, cfg.batch_size, max_buffered=cfg.max_buffered,
                                  set_aside_retention=cfg.set_aside_retention,
                                  backfill=self._backfill(), slots=cfg.writer_slots)
                self._sink_pid = os.getpid()
            sink = self._sink
        assert sink is not None
        if started:  # in the background: a slow InfluxDB must not hold up the first beacon
            threading.Thread(target=self.usage.mark_golive_once, args=(self._golive_marked, sink),
                             name="analytics-golive", daemon=True).start()
        return sink

    def _golive_marked(self) -> bool:
        buckets = [self.config.bucket, self.config.rollup_buckets["1h"]]
        return self.admin().mark_exists("golive", buckets)

    def admin(self) -> InfluxAdmin:
        """This process's InfluxDB admin client (queries, tasks), created after fork."""
        if self._admin is None or self._admin_pid != os.getpid():
            t = self.target
            self._admin = InfluxAdmin(t.url, t.org, t.token)
            self._admin_pid = os.getpid()
            self._engine = None
        return self._admin

    def _backfill(self) -> Backfill:
        """Late points' windows re-run by the writer (backfill.py); task names cached 5 minutes."""
        cfg = self.config
        task_names = Expiring(lambda: {t["name"] for t in self.admin().tasks(prefix=cfg.bucket + "_")},
                              ttl=300)
        return Backfill(cfg.bucket, cfg.timezone, lambda runs: rollups.rerun(self.admin(), cfg.bucket, runs),
                        task_names)

    def stats(self) -> Engine:
        """This process's Stats API engine."""
        with self._lock:
            admin = self.admin()
            if self._engine is None:
                prefix = self.config.bucket + "_"
                self._engine = Engine(self.config, admin,
                                      Watermarks(lambda: admin.tasks(prefix), self.config.bucket))
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
