"""The built-in dashboard and the Stats API: access control and thin views over the stats package.

Why off by default: the API answers questions about every permitted site, so nothing is served
until ANALYTICS_DASHBOARD_TOKEN (or a host app's `dashboard_auth` check) says who may ask; without
either, every route here is the host app's own 404, indistinguishable from a missing route. The
page signs in with the token once and then holds an HttpOnly, SameSite=Strict session cookie
(Secure over TLS) that the server can revoke (sessions.py); API callers send
`Authorization: Bearer <token>`. Tokens are compared in constant time, wrong ones are throttled
per client, and sign-in and sign-out accept only same-origin requests (Sec-Fetch-Site, else
Origin), so no other site can sign a user out or in. Only aggregates leave the server: the engine
reads visitor hashes and session IDs to count them and never returns one.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from . import pages
from .privacy import client_ip
from .settings import Config
from .state import current_state
from .stats.plan import raw_horizon
from .stats.query import (
    DATE_RANGES,
    DIMENSIONS,
    EVENT_ONLY,
    METRICS,
    PAGEVIEW_ONLY,
    TAG_DIMENSIONS,
    QueryError,
    UnknownSite,
    parse,
    parse_date_range,
)

log = logging.getLogger("analytics.dashboard")
COOKIE = "analytics_dashboard"
STATIC = {"dashboard.js": "application/javascript", "dashboard.css": "text/css"}


def _error(status: int, message: str) -> Response:
    """The dashboard's and Stats API's error shape, Plausible's: {"error": "<message>"}."""
    resp = jsonify({"error": message})
    resp.status_code = status
    return resp


def _enabled() -> bool:
    state = current_state()
    return bool(state.config.dashboard_token) or state.dashboard_auth is not None


def _require_enabled() -> None:
    """Off: the host app's own 404, the same as for a route that does not exist."""
    if not _enabled():
        abort(404)


def _client() -> str:
    cfg = current_state().config
    return client_ip(request.remote_addr, request.headers.get("X-Forwarded-For"), cfg.trusted_proxies)


def _token_matches(given: str) -> bool:
    token = current_state().config.dashboard_token
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def _checked_token(given: str) -> bool:
    """Compare, counting a wrong token against the client (the caller checked the throttle)."""
    if _token_matches(given):
        return True
    current_state().auth_throttle.failed(_client())
    return False


def _cookie_valid() -> bool:
    value = request.cookies.get(COOKIE)
    state = current_state()
    return bool(value) and bool(state.config.dashboard_token) and state.sessions().valid(value or "")


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else None


def retry_after() -> int:
    """Seconds this client must wait after too many wrong tokens (0: it may try)."""
    return current_state().auth_throttle.retry_after(_client())


def _access() -> tuple[bool, int]:
    """(let in, seconds to wait): a host app's own check, else a bearer token (refused while the
    client is throttled, counted when wrong) or a live session."""
    check = current_state().dashboard_auth
    if check is not None:
        return bool(check()), 0
    bearer = _bearer()
    if bearer is not None:
        wait = retry_after()
        return (False, wait) if wait else (_checked_token(bearer), 0)
    return _cookie_valid(), 0


def authorised() -> bool:
    return _access()[0]


def _throttled(wait: int) -> Response:
    resp = _error(429, f"too many wrong tokens from this client; retry in {wait} s")
    resp.headers["Retry-After"] = str(wait)
    return _no_store(resp)


def _guard_api() -> Response | None:
    _require_enabled()
    allowed, wait = _access()
    if wait:
        return _throttled(wait)
    if not allowed:
        resp = _error(401, "send Authorization: Bearer <ANALYTICS_DASHBOARD_TOKEN>")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="analytics"'
        return resp
    return None


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"  # nosniff: pages.finish, on every response
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


def same_origin() -> bool:
    """A browser's own form, not another site's: Sec-Fetch-Site where the browser sends it, else
    an Origin naming this host; a request with neither (not a browser) cannot be cross-site."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site.strip().lower() in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    try:
        origin_host = (urlsplit(origin).hostname or "").lower()
    except ValueError:
        return False
    return origin_host != "" and origin_host == (request.host.rsplit(":", 1)[0].strip("[]").lower())


def _cross_site() -> Response:
    return _no_store(_error(403, "sign-in and sign-out must come from this site's own page"))


def query_api() -> Response:
    """POST {prefix}/api/v2/query: one Stats API query (docs/api.md)."""
    refused = _guard_api()
    if refused is not None:
        return refused
    if request.mimetype != "application/json":
        return _error(415, "send the query as application/json")
    body = request.get_json(silent=True)
    state = current_state()
    engine = state.stats()
    try:
        site = body.get("site_id") if isinstance(body, dict) else None
        query = parse(body, lambda: engine.sites_with(site), state.config.timezone,
                      datetime.now(UTC), engine.first_day)
        answer = engine.run(query)
    except UnknownSite as err:
        return _no_store(_error(401, str(err)))
    except QueryError as err:
        return _no_store(_error(400, str(err)))
    return _no_store(jsonify(answer))


def realtime_api() -> Response:
    """GET {prefix}/api/v1/stats/realtime/visitors?site_id=…: visitors in the last 5 minutes."""
    refused = _guard_api()
    if refused is not None:
        return refused
    engine = current_state().stats()
    site = request.args.get("site_id", "")
    if site not in engine.sites_with(site):
        return _no_store(_error(401, str(UnknownSite.of(site))))
    return _no_store(jsonify(engine.realtime_visitors(site)))


def sites_api() -> Response:
    """GET {prefix}/api/v1/sites: what the dashboard's site picker offers."""
    refused = _guard_api()
    if refused is not None:
        return refused
    state = current_state()
    return _no_store(jsonify({"sites": state.stats().sites(), "time_zone": state.config.timezone,
                              "note_events": list(state.config.note_events),
                              "agent_extras": list(state.config.agent_extras),
                              # from the catalogue: which filters a panel's query may carry
                              "event_dimensions": _dimensions_of(EVENT_ONLY),
                              "pageview_only_dimensions": _dimensions_of(PAGEVIEW_ONLY),
                              "raw_days": _raw_days(state.config)}))


def _raw_days(cfg: Config) -> list[str] | None:
    """[the first site day raw points still cover, today], or None when they are kept forever: a
    filtered breakdown no rollup keeps can still show those days (dashboard.js says so)."""
    zone = ZoneInfo(cfg.timezone)
    now = datetime.now(UTC)
    first = raw_horizon(cfg.raw_retention, zone, now)
    return None if first is None else [first.isoformat(), now.astimezone(zone).date().isoformat()]


def _dimensions_of(keys: frozenset[str]) -> list[str]:
    return [d for d, key in TAG_DIMENSIONS.items() if key in keys]


def usage_api() -> Response:
    """GET {prefix}/api/v1/usage?date_range=…: server-side usage counts and marks (no site)."""
    refused = _guard_api()
    if refused is not None:
        return refused
    state = current_state()
    raw = request.args.get("date_range", "30d")
    date_range: Any = raw.split(",") if "," in raw else raw
    try:
        period = parse_date_range(date_range, datetime.now(UTC), lambda: None,
                                  state.config.timezone)
        return _no_store(jsonify(state.stats().usage(period)))
    except QueryError as err:
        return _no_store(_error(400, str(err)))


def page() -> Response:
    """GET {prefix}/dashboard: the login form until signed in, then the dashboard."""
    _require_enabled()
    state = current_state()
    prefix = state.config.url_prefix
    if not authorised():
        if state.dashboard_auth is not None:
            return _error(403, "not allowed")
        failed = request.args.get("failed") == "1"
        wait = retry_after()
        html = render_template("analytics/login.html", prefix=prefix, failed=failed, wait=wait)
        resp = pages.html(html, status=429 if wait else 401 if failed else 200)
        if wait:
            resp.headers["Retry-After"] = str(wait)
        return resp
    html = render_template("analytics/dashboard.html", prefix=prefix, metrics=METRICS,
                           dimensions=DIMENSIONS, date_ranges=DATE_RANGES,
                           signed_in_by_token=state.dashboard_auth is None)
    return pages.html(html)


def login() -> Response:
    """POST {prefix}/dashboard/login with form field `token`, from the login page only."""
    _require_enabled()
    state = current_state()
    if state.dashboard_auth is not None:
        abort(404)
    if not same_origin():
        return _cross_site()
    target = f"{state.config.url_prefix}/dashboard"
    if retry_after():
        return _redirect(target)  # the page says how long to wait, with 429 and Retry-After
    if not _checked_token(request.form.get("token", "")):
        return _redirect(target + "?failed=1")
    resp = _redirect(target)
    resp.set_cookie(COOKIE, state.sessions().create(), max_age=state.sessions().max_age,
                    httponly=True, samesite="Strict", secure=pages.is_secure(state.config.trusted_proxies),
                    path=state.config.url_prefix or "/")
    return resp


def logout() -> Response:
    """POST {prefix}/dashboard/logout: ends the session on the server, then drops the cookie."""
    _require_enabled()
    if not same_origin():
        return _cross_site()
    state = current_state()
    cookie = request.cookies.get(COOKIE)
    if cookie and state.config.dashboard_token:
        state.sessions().revoke(cookie)
    prefix = state.config.url_prefix
    resp = _redirect(f"{prefix}/dashboard")
    resp.delete_cookie(COOKIE, path=prefix or "/", httponly=True, samesite="Strict",
                       secure=pages.is_secure(state.config.trusted_proxies))
    return resp


def _redirect(location: str) -> Response:
    resp = Response(status=303)
    resp.headers["Location"] = location
    return _no_store(resp)


def static_file(filename: str) -> Response:
    from importlib import resources

    _require_enabled()
    if filename not in STATIC:
        abort(404)
    try:
        data = resources.files("analytics_bp").joinpath("static", filename).read_bytes()
    except FileNotFoundError:
        return _error(404, "dashboard build missing: run `make agent`")
    resp = Response(data, mimetype=STATIC[filename])
    resp.headers["Cache-Control"] = "no-cache"
    return resp


def _unavailable(err: Exception) -> Response:
    """InfluxDB down or refusing: a 503 that says so, never a 500 (the cause goes to the log)."""
    log.warning("analytics stats query failed: %s: %s", type(err).__name__, str(err)[:300])
    resp = _error(503, "the statistics store (InfluxDB) did not answer; try again")
    resp.headers["Retry-After"] = "5"
    return _no_store(resp)


def _guarded(view: Callable[[], Response]) -> Callable[[], Response]:
    @functools.wraps(view)
    def wrapper() -> Response:
        try:
            return view()
        except (QueryError, HTTPException):
            raise
        except Exception as err:  # anything from InfluxDB or the network
            return _unavailable(err)

    return wrapper


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/dashboard", view_func=page, methods=["GET"])
    bp.add_url_rule("/dashboard/login", view_func=login, methods=["POST"])
    bp.add_url_rule("/dashboard/logout", view_func=logout, methods=["POST"])
    bp.add_url_rule("/dashboard/<filename>", view_func=static_file, methods=["GET"])
    bp.add_url_rule("/api/v2/query", view_func=_guarded(query_api), methods=["POST"])
    bp.add_url_rule("/api/v1/stats/realtime/visitors", view_func=_guarded(realtime_api), methods=["GET"])
    bp.add_url_rule("/api/v1/sites", view_func=_guarded(sites_api), methods=["GET"])
    bp.add_url_rule("/api/v1/usage", view_func=_guarded(usage_api), methods=["GET"])
