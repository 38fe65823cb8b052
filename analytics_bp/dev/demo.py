"""A demo page at `/` for `make run` (ANALYTICS_DEMO=1): the agent in action, data arriving."""

from __future__ import annotations

from flask import Flask, Response, render_template

from ..state import current_state


def demo_page() -> Response:
    cfg = current_state().config
    html = render_template("analytics/demo.html", bucket=cfg.bucket, prefix=cfg.url_prefix)
    return Response(html, mimetype="text/html")


def register_demo(app: Flask) -> None:
    for path in ("/", "/pricing", "/docs/start"):
        app.add_url_rule(path, endpoint=f"demo{path}", view_func=demo_page)
