"""`Analytics`: the Flask extension object, and the per-app state it registers.

Why a state object in `app.extensions["analytics"]`: one extension object may serve several apps
(Flask's pattern), and everything per-process (the sink) is created lazily after gunicorn's fork.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
import weakref
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, has_app_context
from flask_cors import CORS
from markupsafe import Markup

from . import enrich, privacy, settings
from .cardinality import TagGuard
from .collector import Collector
from .settings import Config, ConfigError
from .sink import InfluxAdmin, InfluxTarget, Sink
from .stats_engine import Engine, Watermarks
from .views import make_blueprint

_STATES: weakref.WeakSet[AnalyticsState] = weakref.WeakSet()
INFLUX_KEYS = ("INFLUXDB_V2_URL", "INFLUXDB_V2_ORG", "INFLUXDB_V2_TOKEN")


def influx_target(app_config: dict[str, Any], bucket: str) -> InfluxTarget:
    values = {k: app_config.get(k) or os.environ.get(k, "") for k in INFLUX_KEYS}
    missing = [k for k, v in values.items() if not v]
    if missing:
        raise ConfigError(f"{', '.join(missing)} not set: say where InfluxDB 2 is")
    return InfluxTarget(values["INFLUXDB_V2_URL"], values["INFLUXDB_V2_ORG"],
                        values["INFLUXDB_V2_TOKEN"], bucket)


def cors_origins(cfg: Config) -> list[str] | str:
    if "*" in cfg.cors_origins:
        return "*"
    patterns = []
    for domain in cfg.permitted_domains:
        wildcard = domain.startswith("*.")
        host = r"([a-z0-9-]+\.)+" + re.escape(domain[2:]) if wildcard else re.escape(domain)
        patterns.append(rf"^https?://{host}(:\d+)?$")
    return patterns + [re.escape(o) for o in cfg.cors_origins]


class AnalyticsState:
    """Everything one app's analytics needs; the sink is per process."""

    def __init__(self, config: Config, target: InfluxTarget,
                 dashboard_auth: Callable[[], bool] | None = None) -> None:
        self.config = config
        self.target = target
        self.dashboard_auth = dashboard_auth
        self._engine: Engine | None = None
        self._engine_pid = 0
        self.salts = privacy.SaltStore(config.salt_dir, config.salt_period)
        self.guard = TagGuard(config.state_dir, config.max_tag_values)
        self.collector = Collector(config, self.sink, self.salts, self.guard, enrich.CountryLookup())
        self._sink: Sink | None = None
        self._sink_pid = 0
        self._lock = threading.Lock()
        self.usage: Any = None
        _STATES.add(self)

    def sink(self) -> Sink:
        """This process's sink, created on first use after fork (threads do not survive fork)."""
        sink = self._sink
        if sink is not None and self._sink_pid == os.getpid():
            return sink
        created = False
        with self._lock:
            if self._sink is None or self._sink_pid != os.getpid():
                cfg = self.config
                self._sink = Sink(self.target, cfg.spool_dir, cfg.spool_max_bytes,
                                  cfg.flush_interval, cfg.batch_size)
                self._sink_pid = os.getpid()
                created = True
            sink = self._sink
        if created and self.usage is not None:
            self.usage.mark_golive_once()  # the first start of this host records `golive`
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
        if self.usage is not None:
            self.usage.flush()
        with self._lock:
            sink, self._sink = self._sink, None
            owned = self._sink_pid == os.getpid()
        if sink is not None and owned:
            sink.close()


def close_all() -> None:
    for state in list(_STATES):
        state.close()


atexit.register(close_all)


def template_script(stub: bool = False, **options: object) -> Markup:
    """`{{ analytics_script() }}`: the agent's tag (with SRI) for this app's collector."""
    from .snippet import queue_stub, script_tag

    prefix = current_app.extensions["analytics"].config.url_prefix
    tag = script_tag(prefix, **options)
    return Markup((queue_stub() + "\n" if stub else "") + tag)


def template_notice() -> Markup:
    """`{{ analytics_notice() }}`: a one-line disclosure for page footers."""
    from .privacy_notice import one_line

    cfg = current_app.extensions["analytics"].config
    return Markup(one_line(cfg, f"{cfg.url_prefix}/privacy"))


class Analytics:
    """`Analytics(app)` or `analytics.init_app(app)` mounts the collector at ANALYTICS_URL_PREFIX."""

    def __init__(self, app: Flask | None = None,
                 dashboard_auth: Callable[[], bool] | None = None) -> None:
        """`dashboard_auth`: the host app's own check for the dashboard and Stats API (called in
        the request; True lets the caller in), instead of ANALYTICS_DASHBOARD_TOKEN."""
        self._last_state: AnalyticsState | None = None
        self.dashboard_auth = dashboard_auth
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        secret_given = "ANALYTICS_HMAC_SECRET" in app.config
        settings.apply_defaults(app.config)
        cfg = settings.load(app.config)
        state = AnalyticsState(cfg, influx_target(app.config, cfg.bucket), self.dashboard_auth)
        app.extensions["analytics"] = state
        blueprint = make_blueprint()
        CORS(
            blueprint,
            resources={rf"{re.escape(cfg.url_prefix)}/(pageview|event)$": {}},
            origins=cors_origins(cfg),
            send_wildcard="*" in cfg.cors_origins,
            methods=["POST", "OPTIONS"],
            allow_headers=["Content-Type"],
            max_age=86400,
            supports_credentials=False,
        )
        app.register_blueprint(blueprint, url_prefix=cfg.url_prefix or None)
        app.jinja_env.globals.update(analytics_script=template_script,
                                     analytics_notice=template_notice)
        from .cli import analytics_cli

        app.cli.add_command(analytics_cli)
        from .usage import Usage

        state.usage = Usage(state)
        if secret_given:
            state.usage.check_secret()  # set but empty or "none": fail now, naming the setting
        self._last_state = state

    def state(self) -> AnalyticsState:
        """The current app's state, or (outside any app context) the last app initialised."""
        if has_app_context() and "analytics" in current_app.extensions:
            return current_app.extensions["analytics"]  # type: ignore[no-any-return]
        if self._last_state is None:
            raise RuntimeError("Analytics is not initialised: call init_app(app) first")
        return self._last_state

    # The server-side usage API (seeds 000 and 001), delegated to usage.Usage.
    def log_event(self, module: str, func: str, user_id: str | None, **fields: Any) -> None:
        self.state().usage.log_event(module, func, user_id, **fields)

    def get_pseudonymized_user_id(self, user_id: str | None) -> str:
        return str(self.state().usage.pseudonym(user_id))

    def count(self, event: str, category: str, n: int = 1) -> None:
        self.state().usage.count(event, category, n)

    def seen(self, identifier: str, category: str) -> bool:
        return bool(self.state().usage.seen(identifier, category))

    def mark(self, name: str, category: str = "timeline") -> None:
        self.state().usage.mark(name, category)

    def track(self, action: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.state().usage.track(action)  # type: ignore[no-any-return]
