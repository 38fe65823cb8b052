"""The benchmark's baseline: a bare Flask app that answers the beacon endpoints with 204.

It runs under the same gunicorn.conf.py as the collector, so the ratio measures only what the
collector does per beacon (parsing, validation, privacy, enrichment, the sink), not server settings.
"""

from __future__ import annotations

from flask import Flask


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/analytics/pageview")
    def pageview() -> tuple[str, int]:
        return "", 204

    @app.get("/analytics/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
