"""The blueprint: thin views, and the only reader of `request`.

Each view copies the few request parts the policy needs into a `RequestParts` and turns the
collector's `Outcome` into a response: 204, or a 4xx with a short plain-text reason repeated in
the `X-Analytics-Reason` header (GoatCounter's habit), never a 5xx for what a client sends.
"""

from __future__ import annotations

import hashlib
import ipaddress
from functools import lru_cache
from importlib import resources

from flask import Blueprint, Response, jsonify, render_template, request

from . import __version__, dashboard, pages
from .collector import Outcome, RequestParts
from .snippet import AGENT_FILES
from .state import current_state


def _read_body(limit: int) -> bytes:
    """At most limit+1 bytes, whatever Content-Length claims, so an oversize body costs nothing."""
    if request.content_length is not None and request.content_length > limit:
        return b"x" * (limit + 1)
    return request.stream.read(limit + 1)


def _respond(outcome: Outcome) -> Response:
    if outcome.status == 204:
        return Response(status=204)
    resp = Response(outcome.reason + "\n", status=outcome.status, mimetype="text/plain")
    resp.headers["X-Analytics-Reason"] = outcome.reason
    if outcome.status == 503:
        resp.headers["Retry-After"] = "5"
    return resp


def collect(kind: str) -> Response:
    state = current_state()
    headers = request.headers
    parts = RequestParts(
        body=_read_body(state.config.max_body),
        content_type=headers.get("Content-Type", ""),
        origin=headers.get("Origin"),
        remote_addr=request.remote_addr,
        forwarded_for=headers.get("X-Forwarded-For"),
        user_agent=headers.get("User-Agent", ""),
        dnt=headers.get("DNT"),
        gpc=headers.get("Sec-GPC"),
        content_encoding=headers.get("Content-Encoding", ""),
    )
    return _respond(state.collector.handle(kind, parts))


def pageview() -> Response:
    return collect("pageview")


def event() -> Response:
    return collect("event")


def health() -> tuple[Response, int]:
    """`{"status": "ok"}` (200) or `"unavailable"` (503) for anyone; the details (InfluxDB's error,
    the writer's counters) only for a caller on this host or one the dashboard lets in."""
    state = current_state()
    sink = state.sink()
    reachable = sink.reachable()
    writer = sink.health()
    ok = reachable and not writer["spool_error"]
    body: dict[str, object] = {"status": "ok" if ok else "unavailable"}
    if _local_caller() or dashboard.authorised():
        body.update(version=__version__, writer=writer,
                    influxdb={"reachable": reachable, "bucket": state.config.bucket},
                    rejected=dict(sorted(state.collector.rejections.items())))
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "no-store"  # live figures; the details are not for caches
    return resp, 200 if ok else 503


def _local_caller() -> bool:
    """A monitor on this host talking to gunicorn directly. Anything that came through a proxy
    (it carries X-Forwarded-For) counts as public, whatever address it came from."""
    if request.headers.get("X-Forwarded-For") is not None:
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=4)
def _agent_bytes(filename: str) -> tuple[bytes, str]:
    data = resources.files("analytics_bp").joinpath("static", filename).read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:32]


def agent(filename: str) -> Response:
    try:
        data, etag = _agent_bytes(AGENT_FILES[filename])
    except (KeyError, FileNotFoundError):
        return json_error(404, "not_found", "agent build missing: run `make agent`")
    resp = Response(data, mimetype="application/javascript")
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = "public, max-age=86400, stale-while-revalidate=604800"
    # The snippet's tag loads it with crossorigin="anonymous" and an SRI hash: from a site on
    # another origin the browser runs it only with this header. A public file, no credentials.
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.make_conditional(request)  # 304 for a matching If-None-Match, in place
    return resp


def agent_min() -> Response:
    return agent("agent.js")


def agent_extras() -> Response:
    return agent("agent.extras.js")


def agent_debug() -> Response:
    return agent("agent.debug.js")


def privacy() -> Response:
    """The notice from the live settings: JSON when asked for, HTML otherwise."""
    from .privacy_notice import notice

    data = notice(current_state().config)
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    if best == "application/json" and request.accept_mimetypes["application/json"] > \
            request.accept_mimetypes["text/html"]:
        return jsonify(data)
    page_nonce = pages.nonce()
    return pages.html(render_template("analytics/privacy.html", notice=data, nonce=page_nonce),
                      page_nonce=page_nonce, cache="no-cache")


def json_error(status: int, code: str, message: str) -> Response:
    """The one JSON error shape of the JSON endpoints: {"error": {"code", "message"}}."""
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    return resp


def make_blueprint() -> Blueprint:
    bp = Blueprint("analytics", __name__, template_folder="templates")
    bp.add_url_rule("/pageview", view_func=pageview, methods=["POST"])
    bp.add_url_rule("/event", view_func=event, methods=["POST"])
    bp.add_url_rule("/health", view_func=health, methods=["GET"])
    bp.add_url_rule("/agent.js", view_func=agent_min, methods=["GET"])
    bp.add_url_rule("/agent.extras.js", view_func=agent_extras, methods=["GET"])
    bp.add_url_rule("/agent.debug.js", view_func=agent_debug, methods=["GET"])
    bp.add_url_rule("/privacy", view_func=privacy, methods=["GET"])
    dashboard.register(bp)
    bp.after_request(_finish)
    return bp


def _finish(resp: Response) -> Response:
    return pages.finish(resp, current_state().config.trusted_proxies)
