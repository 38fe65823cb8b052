"""A demo page at `/` for `make run` (ANALYTICS_DEMO=1): the agent in action, data arriving."""

from __future__ import annotations

from flask import Flask, Response, current_app

from .snippet import queue_stub, script_tag

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>analytics_bp demo</title>
<link rel="icon" href="data:,">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem}}
nav a,button{{margin-right:.6rem}}code{{background:#eee;padding:0 .2rem}}</style>
{stub}
{tag}
</head><body>
<h1>analytics_bp demo</h1>
<p>This page loads the agent from this collector. Each navigation below is a pageview
(single-page-app style, no reload); each button records an event. Watch them arrive in the
<code>{bucket}</code> bucket, or at <a href="{prefix}/health">{prefix}/health</a>.</p>
<nav><a href="/" data-spa>Home</a><a href="/pricing" data-spa>Pricing</a>
<a href="/docs/start" data-spa>Docs</a></nav>
<p id="where">You are on <code>/</code>.</p>
<p><button onclick="recordEvent('signup', 'demo button')">recordEvent('signup')</button>
<button data-analytics-event="socialclick" data-analytics-note="mastodon">Share (declarative)
</button></p>
<p>Privacy: see <a href="{prefix}/privacy">what is collected</a>.</p>
<script>
document.addEventListener('click', function (e) {{
  var a = e.target.closest('a[data-spa]');
  if (!a) return;
  e.preventDefault();
  history.pushState({{}}, '', a.getAttribute('href'));
  document.getElementById('where').innerHTML = 'You are on <code>' + location.pathname + '</code>.';
}});
</script>
</body></html>
"""


def demo_page() -> Response:
    state = current_app.extensions["analytics"]
    prefix = state.config.url_prefix
    html = PAGE.format(stub=queue_stub(), tag=script_tag(prefix, allow_local=True),
                       bucket=state.config.bucket, prefix=prefix)
    return Response(html, mimetype="text/html")


def register_demo(app: Flask) -> None:
    for path in ("/", "/pricing", "/docs/start"):
        app.add_url_rule(path, endpoint=f"demo{path}", view_func=demo_page)
