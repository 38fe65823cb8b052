"""Privacy-sensitive, self-hosted web analytics: a Flask blueprint writing to InfluxDB 2.

`Analytics(app)` mounts the collector in an existing app; `create_app()` builds a standalone one
configured from environment variables (`gunicorn 'analytics_bp:create_app()'`).
"""

from __future__ import annotations

import os

from flask import Flask

from .extension import Analytics, close_all
from .settings import ConfigError, from_environ

__all__ = ["Analytics", "ConfigError", "close_all", "create_app"]


def create_app(**overrides: object) -> Flask:
    """A standalone collector app; every setting comes from the environment (or `overrides`)."""
    app = Flask(__name__)
    app.config.update(from_environ(os.environ))
    app.config.update(overrides)
    analytics = Analytics(app)
    app.extensions["analytics_ext"] = analytics
    if app.config.get("ANALYTICS_DEMO") or os.environ.get("ANALYTICS_DEMO"):
        from .demo import register_demo

        register_demo(app)
    return app
