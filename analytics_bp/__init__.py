"""Privacy-sensitive, self-hosted web analytics: a Flask blueprint writing to InfluxDB 2.

`Analytics(app)` mounts the collector in an existing app; `create_app()` builds a standalone one
configured from environment variables (`gunicorn 'analytics_bp:create_app()'`).
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

from flask import Flask

try:
    __version__ = version("analytics_bp")
except PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
    __version__ = "0+unknown"

from .extension import Analytics
from .settings import ConfigError, from_environ, server_setting
from .state import AnalyticsState, close_all

__all__ = ["Analytics", "AnalyticsState", "ConfigError", "__version__", "close_all", "create_app"]


def create_app(**overrides: object) -> Flask:
    """A standalone collector app; every setting comes from the environment (or `overrides`).

    Its usage API is `app.extensions["analytics"]` (an AnalyticsState bound to this app)."""
    app = Flask(__name__, static_folder=None)  # the package's static/ is served by the blueprint
    app.config.update(from_environ(os.environ))
    app.config.update(overrides)
    Analytics(app)
    if app.config.get("ANALYTICS_DEMO") or server_setting("ANALYTICS_DEMO"):
        from .dev.demo import register_demo

        register_demo(app)
    return app
