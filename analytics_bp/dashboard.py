"""The built-in dashboard and the Stats API: access control and thin views over stats_engine.

Why off by default: the API answers questions about every permitted site, so nothing is served
until ANALYTICS_DASHBOARD_TOKEN (or a host app's `dashboard_auth` check) says who may ask; without
either, every route here is a 404, indistinguishable from a missing route. The page signs in with
the token once and then holds a signed, HttpOnly, SameSite=Strict cookie (Secure over https); API
callers send `Authorization: Bearer <token>`. Tokens are compared in constant time. Only
aggregates leave the server: the engine reads visitor hashes and session IDs to count them and
never returns one.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .state import current_state
from .stats_query import DATE_RANGES, DIMENSIONS, METRICS, QueryError, parse

log = logging.getLogger("analytics.dashboard")
COOKIE = "analytics_dashboard"
COOKIE_MAX_AGE = 7 * 86400
STATIC = {"dashboard.js": "application/javascript", "dashboard.css": "text/css"}


def _error(status: int, code: str, message: str) -> Response:
    from .views import json_error

    return json_error(status, code, message)


def _enabled() -> bool:
    state = current_state()
    return bool(state.config.dashboard_token) or state.dashboard_auth is not None


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_state().config.dashboard_token, salt="analytics-dashboard")


def _token_matches(given: str) -> bool:
    token = current_state().config.dashboard_token
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def _cookie_valid() -> bool:
    value = request.cookies.get(COOKIE)
    if not value or not current_state().config.dashboard_token:
        return False
    try:
        return bool(_signer().loads(value, max_age=COOKIE_MAX_AGE) == "signed-in")
    except BadSignature:
        return False


def authorised() -> bool:
    """A host app's own check, else a bearer token or the signed session cookie."""
    check = current_state().dashboard_auth
    if check is not None:
        return bool(check())
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return _token_matches(header[7:].strip())
    return _cookie_valid()


def _guard_api() -> Response | None:
    if not _enabled():
        return _error(404, "not_found", "not found")
    if not authorised():
        resp = _error(401, "unauthorized", "send Authorization: Bearer <ANALYTICS_DASHBOARD_TOKEN>")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="analytics"'
        return resp
    return None


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


def _today() -> Any:
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(current_state().config.timezone)).date()


def query_api() -> Response:
    """POST {prefix}/api/v2/query: one Stats API query (docs/api.md)."""
    refused = _guard_api()
    if refused is not None:
        return refused
    if request.mimetype != "application/json":
        return _error(415, "unsupported_media_type", "send the query as application/json")
    body = request.get_json(silent=True)
    state = current_state()
    engine = state.stats()
    try:
        query = parse(body, engine.sites, state.config.timezone, _today(), engine.first_day)
        answer = engine.run(query)
    except QueryError as err:
        return _no_store(_error(400, "bad_query", str(err)))
    return _no_store(jsonify(answer))


def realtime_api() -> Response:
    """GET {prefix}/api/v1/stats/realtime/visitors?site_id=…: visitors in the last 5 minutes."""
    refused = _guard_api()
    if refused is not None:
        return refused
    engine = current_state().stats()
    site = request.args.get("site_id", "")
    if site not in engine.sites():
        return _no_store(_error(400, "bad_query", "site_id must be a permitted domain"))
    return _no_store(jsonify(engine.realtime_visitors(site)))


def sites_api() -> Response:
    """GET {prefix}/api/v1/sites: what the dashboard's site picker offers."""
    refused = _guard_api()
    if refused is not None:
        return refused
    state = current_state()
    return _no_store(jsonify({"sites": state.stats().sites(), "time_zone": state.config.timezone,
                              "note_events": list(state.config.note_events),
                              "agent_extras": list(state.config.agent_extras)}))


def usage_api() -> Response:
    """GET {prefix}/api/v1/usage?date_range=…: server-side usage counts and marks (no site)."""
    refused = _guard_api()
    if refused is not None:
        return refused
    state = current_state()
    raw = request.args.get("date_range", "30d")
    date_range: Any = raw.split(",") if "," in raw else raw
    try:
        from .stats_query import parse_date_range

        start, end = parse_date_range(date_range, _today(), lambda: None)
        return _no_store(jsonify(state.stats().usage(start, end)))
    except QueryError as err:
        return _no_store(_error(400, "bad_query", str(err)))


def page() -> Response | tuple[str, int]:
    """GET {prefix}/dashboard: the login form until signed in, then the dashboard."""
    if not _enabled():
        return _error(404, "not_found", "not found")
    state = current_state()
    prefix = state.config.url_prefix
    if not authorised():
        if state.dashboard_auth is not None:
            return _error(403, "forbidden", "not allowed")
        failed = request.args.get("failed") == "1"
        html = render_template("analytics/login.html", prefix=prefix, failed=failed)
        return _no_store(Response(html, status=401 if failed else 200, mimetype="text/html"))
    html = render_template("analytics/dashboard.html", prefix=prefix, metrics=METRICS,
                           dimensions=DIMENSIONS, date_ranges=DATE_RANGES,
                           signed_in_by_token=state.dashboard_auth is None)
    resp = Response(html, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    return _no_store(resp)


def login() -> Response:
    """POST {prefix}/dashboard/login with form field `token`."""
    if not _enabled() or current_state().dashboard_auth is not None:
        return _error(404, "not_found", "not found")
    prefix = current_state().config.url_prefix
    target = f"{prefix}/dashboard"
    if not _token_matches(request.form.get("token", "")):
        return _redirect(target + "?failed=1")
    resp = _redirect(target)
    resp.set_cookie(COOKIE, _signer().dumps("signed-in"), max_age=COOKIE_MAX_AGE, httponly=True,
                    samesite="Strict", secure=request.is_secure, path=prefix or "/")
    return resp


def logout() -> Response:
    prefix = current_state().config.url_prefix
    resp = _redirect(f"{prefix}/dashboard")
    resp.delete_cookie(COOKIE, path=prefix or "/")
    return resp


def _redirect(location: str) -> Response:
    resp = Response(status=303)
    resp.headers["Location"] = location
    return _no_store(resp)


def static_file(filename: str) -> Response:
    from importlib import resources

    if not _enabled() or filename not in STATIC:
        return _error(404, "not_found", "not found")
    try:
        data = resources.files("analytics_bp").joinpath("static", filename).read_bytes()
    except FileNotFoundError:
        return _error(404, "not_found", "dashboard build missing: run `make agent`")
    resp = Response(data, mimetype=STATIC[filename])
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _unavailable(err: Exception) -> Response:
    """InfluxDB down or refusing: a 503 that says so, never a 500 (the cause goes to the log)."""
    log.warning("analytics stats query failed: %s: %s", type(err).__name__, str(err)[:300])
    resp = _error(503, "unavailable", "the statistics store (InfluxDB) did not answer; try again")
    resp.headers["Retry-After"] = "5"
    return _no_store(resp)


def _guarded(view: Callable[[], Response]) -> Callable[[], Response]:
    @functools.wraps(view)
    def wrapper() -> Response:
        try:
            return view()
        except QueryError:
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
