"""Signing in to the dashboard and the Stats API (dashboard): sessions the server ends, a cookie
that is no oracle for the token, throttled guessing, and the headers every page carries."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from itsdangerous import BadSignature, URLSafeTimedSerializer

from analytics_bp.sessions import FailureThrottle

TOKEN = "auth-8Kx2Vq7Lp3Zr9Nm4Wc6Yb1Hd5Jt0Fs"
OTHER_TOKEN = "auth-other-3Qw8Er5Ty1Ui7Op4As9Df2Gh6"
COOKIE = "analytics_dashboard"
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def sign_in(client: FlaskClient, token: str = TOKEN, **headers: str) -> Any:
    return client.post("/analytics/dashboard/login", data={"token": token},
                       headers={**SAME_ORIGIN, **headers})


def cookie_of(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE, path="/analytics")
    assert cookie is not None
    return cookie.value


def sites(client: FlaskClient, cookie: str) -> int:
    client.set_cookie(COOKIE, cookie, path="/analytics")
    return client.get("/analytics/api/v1/sites").status_code


def test_signing_out_ends_the_session_on_the_server(make_app: Any) -> None:
    client = make_app(ANALYTICS_DASHBOARD_TOKEN=TOKEN).test_client()
    assert sign_in(client).status_code == 303
    copied = cookie_of(client)
    assert sites(client, copied) == 200
    assert client.post("/analytics/dashboard/logout", headers=SAME_ORIGIN).status_code == 303
    assert client.get_cookie(COOKIE, path="/analytics") is None
    assert sites(client, copied) == 401  # the copy taken before signing out is worthless now


def test_a_new_token_ends_every_session(make_app: Any, tmp_path: Any) -> None:
    state = str(tmp_path / "shared-state")
    first = make_app(ANALYTICS_DASHBOARD_TOKEN=TOKEN, ANALYTICS_STATE_DIR=state).test_client()
    sign_in(first)
    cookie = cookie_of(first)
    assert sites(first, cookie) == 200
    changed = make_app(ANALYTICS_DASHBOARD_TOKEN=OTHER_TOKEN, ANALYTICS_STATE_DIR=state).test_client()
    assert sites(changed, cookie) == 401
    back = make_app(ANALYTICS_DASHBOARD_TOKEN=TOKEN, ANALYTICS_STATE_DIR=state).test_client()
    assert sites(back, cookie) == 401  # changing the token back does not revive old sessions


def test_the_cookie_is_signed_with_a_key_of_the_servers_own(make_app: Any) -> None:
    app = make_app(ANALYTICS_DASHBOARD_TOKEN=TOKEN)
    client = app.test_client()
    sign_in(client)
    cookie = cookie_of(client)
    assert TOKEN not in cookie
    for salt in ("analytics-dashboard", "analytics-dashboard-session"):
        with pytest.raises(BadSignature):  # knowing (or guessing) the token does not check it
            URLSafeTimedSerializer(TOKEN, salt=salt).loads(cookie)
    forged = URLSafeTimedSerializer(TOKEN, salt="analytics-dashboard").dumps("signed-in")
    assert sites(client, forged) == 401


def test_wrong_tokens_are_throttled_per_client(make_app: Any) -> None:
    client = make_app(ANALYTICS_DASHBOARD_TOKEN=TOKEN, ANALYTICS_TRUSTED_PROXIES="1").test_client()
    attacker = {"X-Forwarded-For": "203.0.113.9"}
    allowed = FailureThrottle().allowed
    for n in range(allowed):
        resp = client.get("/analytics/api/v1/sites",
                          headers={**attacker, "Authorization": f"Bearer guess-{n:040d}"})
        assert resp.status_code == 401, n
    throttled = client.get("/analytics/api/v1/sites",
                           headers={**attacker, "Authorization": f"Bearer {TOKEN}"})
    assert throttled.status_code == 429  # even the right token, until the window has passed
    assert 1 <= int(throttled.headers["Retry-After"]) <= 300
    assert throttled.get_json()["error"].startswith("too many wrong tokens from this client; retry in ")
    page = client.get("/analytics/dashboard", headers=attacker)
    assert page.status_code == 429 and "Retry-After" in page.headers
    assert "Too many wrong tokens from here" in page.get_data(as_text=True)
    login = sign_in(client, **attacker)
    assert login.status_code == 303 and client.get_cookie(COOKIE, path="/analytics") is None
    someone_else = {"X-Forwarded-For": "198.51.100.4", "Authorization": f"Bearer {TOKEN}"}
    assert client.get("/analytics/api/v1/sites", headers=someone_else).status_code == 200


def test_login_failures_count_like_bearer_failures(make_app: Any) -> None:
    client = make_app(ANALYTICS_DASHBOARD_TOKEN=TOKEN).test_client()
    for n in range(FailureThrottle().allowed):
        assert sign_in(client, token=f"wrong-{n}").headers["Location"].endswith("?failed=1")
    resp = client.get("/analytics/dashboard?failed=1")
    assert resp.status_code == 429
    assert client.get("/analytics/api/v1/sites",
                      headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 429


def test_the_throttle_forgets_after_its_window_and_stays_small() -> None:
    now = [1000.0]
    throttle = FailureThrottle(allowed=3, window=60, clients=100, clock=lambda: now[0])
    for _ in range(3):
        throttle.failed("203.0.113.9")
    assert throttle.retry_after("203.0.113.9") == 60
    now[0] += 59.5
    assert throttle.retry_after("203.0.113.9") == 1
    now[0] += 1
    assert throttle.retry_after("203.0.113.9") == 0
    for n in range(1000):
        throttle.failed(f"198.51.{n // 256}.{n % 256}")
    assert len(throttle._failures) == 100


@pytest.mark.parametrize("path", ["/analytics/dashboard/login", "/analytics/dashboard/logout"])
@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                                     {"Origin": "https://evil.example"}, {"Origin": "null"}])
def test_sign_in_and_out_refuse_other_sites(make_app: Any, path: str, headers: dict[str, str]) -> None:
    client = make_app(ANALYTICS_DASHBOARD_TOKEN=TOKEN).test_client()
    sign_in(client)
    resp = client.post(path, data={"token": TOKEN}, headers=headers)
    assert resp.status_code == 403
    assert resp.get_json() == {"error": "sign-in and sign-out must come from this site's own page"}
    assert sites(client, cookie_of(client)) == 200  # still signed in


def test_a_low_entropy_token_stops_start_up(make_app: Any) -> None:
    from analytics_bp.settings import ConfigError

    for weak in ("a" * 32, "0123456789abcdef" * 2, "password-password-password-password"):
        with pytest.raises(ConfigError, match=r"^ANALYTICS_DASHBOARD_TOKEN=\(hidden\): too easy to guess"):
            make_app(ANALYTICS_DASHBOARD_TOKEN=weak)


PAGES = ["/analytics/dashboard", "/analytics/privacy", "/"]


def test_every_page_refuses_framing_and_foreign_code(make_app: Any) -> None:
    client = make_app(ANALYTICS_DASHBOARD_TOKEN=TOKEN, ANALYTICS_DEMO="1").test_client()
    for signed_in in (False, True):
        if signed_in:
            sign_in(client)
        for path in PAGES:
            resp = client.get(path)
            assert resp.status_code == 200, path
            csp = resp.headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, path
            assert re.search(r"script-src 'self'( 'nonce-[\w-]+')?;", csp), path
            assert resp.headers["X-Frame-Options"] == "DENY"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            nonces = re.findall(r"'nonce-([\w-]+)'", csp)
            inline = re.findall(r'<(?:script|style) nonce="([\w-]+)"', resp.get_data(as_text=True))
            assert set(inline) <= set(nonces), path  # every inline script or style is the page's own
            assert "onclick=" not in resp.get_data(as_text=True)


def test_cookie_secure_and_hsts_only_behind_a_trusted_tls_proxy(make_app: Any) -> None:
    behind = make_app(ANALYTICS_DASHBOARD_TOKEN=TOKEN, ANALYTICS_TRUSTED_PROXIES="1").test_client()
    tls = sign_in(behind, **{"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert "Secure" in tls.headers["Set-Cookie"]
    assert tls.headers["Strict-Transport-Security"] == "max-age=31536000"
    plain = sign_in(behind, **{"X-Forwarded-Proto": "http", "X-Forwarded-For": "203.0.113.9"})
    assert "Secure" not in plain.headers["Set-Cookie"] and "Strict-Transport-Security" not in plain.headers
    direct = make_app(ANALYTICS_DASHBOARD_TOKEN=TOKEN).test_client()  # no proxy trusted
    spoofed = sign_in(direct, **{"X-Forwarded-Proto": "https"})
    assert "Secure" not in spoofed.headers["Set-Cookie"]
    assert "Strict-Transport-Security" not in spoofed.headers


def test_nothing_of_the_dashboard_while_it_is_off(make_app: Any) -> None:
    client = make_app().test_client()
    reference = client.get("/analytics/no-such-route")
    assert reference.status_code == 404
    for method, path in [("GET", "/analytics/dashboard"), ("GET", "/analytics/dashboard/dashboard.js"),
                         ("GET", "/analytics/dashboard/dashboard.css"), ("GET", "/static/dashboard.js"),
                         ("GET", "/static/agent.min.js"), ("POST", "/analytics/api/v2/query"),
                         ("GET", "/analytics/api/v1/sites"), ("POST", "/analytics/dashboard/login"),
                         ("POST", "/analytics/dashboard/logout")]:
        resp = client.open(path, method=method, headers=SAME_ORIGIN)
        assert resp.status_code == 404, path
        assert resp.get_data() == reference.get_data(), path
        assert sorted(resp.headers.keys()) == sorted(reference.headers.keys()), path


def test_health_is_never_cached(make_app: Any) -> None:
    client = make_app().test_client()
    for headers in ({}, {"X-Forwarded-For": "203.0.113.9"}):
        assert client.get("/analytics/health", headers=headers).headers["Cache-Control"] == "no-store"
