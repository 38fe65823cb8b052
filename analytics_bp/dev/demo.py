"""A demo page at `/` for `make run` (ANALYTICS_DEMO=1): the agent in action, data arriving."""

from __future__ import annotations

from flask import Flask, Response, render_template, request

from .. import pages
from ..state import current_state


def demo_page() -> Response:
    cfg = current_state().config
    page_nonce = pages.nonce()
    site = request.host.rsplit(":", 1)[0]  # what the agent sends as the domain on this page
    html = render_template("analytics/demo.html", bucket=cfg.bucket, prefix=cfg.url_prefix,
                           nonce=page_nonce, site=site)
    return pages.finish(pages.html(html, page_nonce=page_nonce, cache="no-cache"),
                        cfg.trusted_proxies)


def register_demo(app: Flask) -> None:
    for path in ("/", "/pricing", "/docs/start"):
        app.add_url_rule(path, endpoint=f"demo{path}", view_func=demo_page)
