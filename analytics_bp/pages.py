"""What every response of the blueprint carries: locked-down HTML pages, HSTS behind TLS.

Why one place: the login page, the dashboard, the privacy notice and the demo page must all refuse
to be framed (clickjacking), run no script or style but their own (a per-response nonce for the
few inline ones), and never be sniffed as another type; and whether a request came over TLS
decides the cookie's `Secure` flag and HSTS. Behind a proxy that is X-Forwarded-Proto, trusted only
from the ANALYTICS_TRUSTED_PROXIES hops nearest to us, as X-Forwarded-For is (privacy.client_ip).
"""

from __future__ import annotations

import secrets

from flask import Response, request

from .privacy import client_ip

HSTS = "max-age=31536000"


def nonce() -> str:
    return secrets.token_urlsafe(16)


def content_security_policy(page_nonce: str = "") -> str:
    inline = f" 'nonce-{page_nonce}'" if page_nonce else ""
    return (f"default-src 'none'; script-src 'self'{inline}; style-src 'self'{inline}; "
            "connect-src 'self'; img-src 'self' data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")


def html(body: str, status: int = 200, page_nonce: str = "", cache: str = "no-store") -> Response:
    """An HTML page that no other site can frame and that runs only its own code."""
    resp = Response(body, status=status, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = content_security_policy(page_nonce)
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = cache
    return resp


def is_secure(trusted_proxies: int) -> bool:
    """Over TLS: this hop's own scheme, or the trusted proxy's X-Forwarded-Proto."""
    if request.is_secure:
        return True
    proto = request.headers.get("X-Forwarded-Proto")
    if trusted_proxies < 1 or not proto:
        return False
    return client_ip("", proto, trusted_proxies).strip().lower() == "https"


def finish(resp: Response, trusted_proxies: int) -> Response:
    """After every blueprint response but 404s (those stay the host app's own, identical to any)."""
    if resp.status_code == 404:
        return resp
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    if is_secure(trusted_proxies):
        resp.headers.setdefault("Strict-Transport-Security", HSTS)
    return resp
