"""`Analytics`: the Flask extension object, following Flask's conventions.

Why this shape: one `Analytics()` may serve several apps (`init_app` per app) and may exist before
any app does; it keeps no app and no "last app", and stores everything per app in one entry,
`app.extensions["analytics"]` (state.AnalyticsState). Its usage API finds the current app when it
is called (inside a request or an app context); `app.extensions["analytics"]` offers the same API
bound to its app, for code that runs outside any context.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
from collections.abc import Callable
from typing import Any

from flask import Flask, render_template
from flask_cors import CORS
from markupsafe import Markup

from . import settings
from .settings import Config
from .state import AnalyticsState, close_all, current_state
from .usage import TrackDecorator, track_with
from .views import make_blueprint

atexit.register(close_all)


def cors_origins(cfg: Config) -> list[str] | str:
    if "*" in cfg.cors_origins:
        return "*"
    patterns = []
    for domain in cfg.permitted_domains:
        wildcard = domain.startswith("*.")
        host = r"([a-z0-9-]+\.)+" + re.escape(domain[2:]) if wildcard else re.escape(domain)
        patterns.append(rf"^https?://{host}(:\d+)?$")
    # flask-cors matches regex patterns from the start only: anchor the end too, so the entry
    # https://partner.com does not let https://partner.com.evil.net in.
    return patterns + [rf"^{re.escape(o)}$" for o in cfg.cors_origins]


def template_script(stub: bool = False, nonce: str = "", **options: object) -> Markup:
    """`{{ analytics_script() }}`: the agent's tag (with SRI) for this app's collector; `stub`
    adds the recordEvent queue stub, with `nonce` for a page whose CSP allows inline scripts
    only by nonce."""
    from .snippet import queue_stub, script_tag

    tag = script_tag(current_state().config.url_prefix, **options)
    return Markup((queue_stub(nonce) + "\n" if stub else "") + tag)


def template_notice() -> Markup:
    """`{{ analytics_notice() }}`: a one-line disclosure for page footers."""
    cfg = current_state().config
    return Markup(render_template("analytics/notice_line.html", url=f"{cfg.url_prefix}/privacy",
                                  respect_dnt=cfg.respect_dnt))


log = logging.getLogger("analytics.startup")


def announce(given: frozenset[str], cfg: Config, host_auth: bool) -> None:
    """Say at start which parts are on, and warn about settings that sit in the environment but
    not in app.config: a mounted app reads app.config only (create_app reads the environment)."""
    log.info("analytics: collecting at %s/pageview and /event for %s; events: %s; state in %s",
             cfg.url_prefix, ",".join(cfg.permitted_domains),
             ",".join(sorted(cfg.accepted_events)) or "none", cfg.state_dir)
    if host_auth:
        log.info("analytics: dashboard and Stats API on, behind the host app's dashboard_auth check")
    elif cfg.dashboard_token:
        log.info("analytics: dashboard on at %s/dashboard, Stats API at %s/api/v2/query",
                 cfg.url_prefix, cfg.url_prefix)
    else:
        log.info("analytics: dashboard and Stats API off (404): ANALYTICS_DASHBOARD_TOKEN is not set "
                 "in app.config")
    unread = sorted(k for k in os.environ if k in settings.SETTING_NAMES and k not in given)
    if unread:
        log.warning("analytics: %s set in the environment but not in app.config, so not used: a "
                    "mounted app reads its settings from app.config (for example "
                    "app.config.from_prefixed_env() or app.config[name] = os.environ[name])",
                    ", ".join(unread))


class Analytics:
    """`Analytics(app)` or `analytics.init_app(app)` mounts the collector at ANALYTICS_URL_PREFIX."""

    def __init__(self, app: Flask | None = None,
                 dashboard_auth: Callable[[], bool] | None = None) -> None:
        """`dashboard_auth`: the host app's own check for the dashboard and Stats API (called in
        the request; True lets the caller in), instead of ANALYTICS_DASHBOARD_TOKEN."""
        self.dashboard_auth = dashboard_auth
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        given = frozenset(app.config)
        secret_given = "ANALYTICS_HMAC_SECRET" in given
        settings.apply_defaults(app.config)
        cfg = settings.load(app.config)
        state = AnalyticsState(cfg, settings.influx_target(app.config, cfg.bucket), self.dashboard_auth)
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
        if secret_given:
            state.usage.check_secret()  # set but empty or "none": fail now, naming the setting
        announce(given, cfg, self.dashboard_auth is not None)

    # The server-side usage API (seeds 000 and 001), for the app handling the current request.
    @staticmethod
    def state() -> AnalyticsState:
        """The current app's analytics (inside a request or an app context; outside one, Flask's
        RuntimeError says so)."""
        return current_state()

    def log_event(self, module: str, func: str, user_id: str | None, **fields: Any) -> None:
        self.state().log_event(module, func, user_id, **fields)

    def get_pseudonymized_user_id(self, user_id: str | None) -> str:
        return self.state().get_pseudonymized_user_id(user_id)

    def count(self, event: str, category: str, n: int = 1) -> None:
        self.state().count(event, category, n)

    def seen(self, identifier: str, category: str) -> bool:
        return self.state().seen(identifier, category)

    def mark(self, name: str, category: str = "timeline") -> None:
        self.state().mark(name, category)

    def track(self, action: str) -> TrackDecorator:
        """Decorator; usable before `init_app`: the app is found when the function runs."""
        return track_with(lambda: self.state().usage, action)
