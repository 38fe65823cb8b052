"""The deployment path (deploy): gunicorn's own logs without client addresses, nginx without tells
and with throttled sign-in and TLS, graceful stops that lose nothing under any gunicorn config."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics_bp.logfilter import REDACTED, redact
from tests.support.build import ROOT
from tests.support.influx import Influx
from tests.support.servers import CHROME_LIKE_UA, VENV_BIN, Gunicorn, Nginx

TOKEN = "deploy-5Nq8Wz2Lx7Vc4Rb9Km1Jt6Hp3Yd0Gf"


def env_for(influx: Influx, bucket: str, state: Path, **extra: str) -> dict[str, str]:
    return {**influx.creds.as_env(), "ANALYTICS_BUCKET": bucket, "ANALYTICS_STATE_DIR": str(state),
            "ANALYTICS_PERMITTED_DOMAINS": "example.com", "ANALYTICS_FLUSH_INTERVAL": "0.2", **extra}


def raw_request(port: int, data: bytes, source: str = "127.0.0.2") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(4096)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


MALFORMED = [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
             b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", b"POST / HTTP/9.9\r\n\r\n"]


def test_gunicorns_error_log_never_names_the_client(influx: Influx, bucket: str, tmp_path: Path) -> None:
    log = tmp_path / "gunicorn.log"
    with Gunicorn(env_for(influx, bucket, tmp_path / "state"), workers=1, log=log) as server:
        for data in MALFORMED:
            raw_request(server.port, data)
        time.sleep(0.5)
    text = log.read_text()
    assert "Invalid request from ip=(address)" in text
    assert "127.0.0.2" not in text


@given(st.ip_addresses(), st.text(max_size=40), st.text(max_size=40), st.booleans())
def test_redact_takes_out_any_address_in_any_text(address: Any, before: str, after: str,
                                                  port: bool) -> None:
    text = f"{before} {address}{':8080' if port and address.version == 4 else ''} {after}"
    redacted = redact(text)
    assert REDACTED in redacted
    assert f" {address}" not in redacted


@pytest.fixture
def proxied(influx: Influx, bucket: str, tmp_path: Path) -> Iterator[tuple[Gunicorn, Nginx]]:
    env = env_for(influx, bucket, tmp_path / "state", ANALYTICS_TRUSTED_PROXIES="1",
                  ANALYTICS_DASHBOARD_TOKEN=TOKEN)
    with Gunicorn(env, workers=1) as gunicorn, Nginx(f"127.0.0.1:{gunicorn.port}", tmp_path) as nginx:
        yield gunicorn, nginx


def fetch(url: str, data: bytes | None = None, **headers: str) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_nginx_names_no_version(proxied: tuple[Gunicorn, Nginx]) -> None:
    _, nginx = proxied
    for path in ("/analytics/agent.js", "/nothing-here", "/analytics/health"):
        _, headers, body = fetch(nginx.url + path)
        assert headers["Server"] == "nginx", path
        assert b"nginx/" not in body


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def login(url: str, token: str) -> tuple[int, Any]:
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url + "/analytics/dashboard/login",
                                     data=f"token={token}".encode(),
                                     headers={"Content-Type": "application/x-www-form-urlencoded",
                                              "Sec-Fetch-Site": "same-origin"})
    try:
        with opener.open(request, timeout=10) as resp:
            return resp.status, resp.headers
    except urllib.error.HTTPError as err:
        return err.code, err.headers


def test_nginx_throttles_sign_in_attempts(proxied: tuple[Gunicorn, Nginx]) -> None:
    _, nginx = proxied
    statuses = [login(nginx.url, f"guess-{n}") for n in range(12)]
    codes = [code for code, _ in statuses]
    assert codes[:6] == [303] * 6  # the first try and its burst of five reach the collector
    assert codes[6:] == [429] * 6
    assert all(headers["Retry-After"] == "60" for code, headers in statuses if code == 429)


def test_behind_nginx_with_tls_the_cookie_is_secure_and_hsts_is_sent(
        influx: Influx, bucket: str, tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    env = env_for(influx, bucket, tmp_path / "state", ANALYTICS_TRUSTED_PROXIES="1",
                  ANALYTICS_DASHBOARD_TOKEN=TOKEN)
    import ssl

    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    with Gunicorn(env, workers=1) as gunicorn, \
            Nginx(f"127.0.0.1:{gunicorn.port}", tmp_path, tls=(cert, key)) as nginx:
        https = nginx.url.replace("http://", "https://")
        opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=context))
        request = urllib.request.Request(https + "/analytics/dashboard/login", data=f"token={TOKEN}".encode(),
                                         headers={"Sec-Fetch-Site": "same-origin"})
        try:
            opener.open(request, timeout=10)
            raise AssertionError("expected a 303")
        except urllib.error.HTTPError as err:
            assert err.code == 303
            headers = err.headers
        assert "Secure" in headers["Set-Cookie"] and "HttpOnly" in headers["Set-Cookie"]
        assert headers["Strict-Transport-Security"] == "max-age=31536000"
        with opener.open(https + "/analytics/dashboard", timeout=10) as page:
            assert page.headers["Strict-Transport-Security"] == "max-age=31536000"


MOUNTED_APP = textwrap.dedent("""
    from flask import Flask
    from analytics_bp import Analytics

    app = Flask(__name__)
    app.config.from_prefixed_env(prefix="SITE")
    Analytics(app)

    @app.get("/")
    def home():
        return "the host app"
""")


def beacon_then_sigterm(server: Gunicorn, page: str) -> None:
    """One beacon, then SIGTERM to the master within 100 ms of its 204."""
    body = json.dumps({"domain": "example.com", "page": page, "sess_id": "abcd-1234"}).encode()
    request = urllib.request.Request(server.url + "/analytics/pageview", data=body, headers={
        "Content-Type": "text/plain", "User-Agent": CHROME_LIKE_UA})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 204
        answered = time.monotonic()
    server.signal(signal.SIGTERM)
    assert time.monotonic() - answered < 0.1
    assert server.proc is not None
    server.proc.wait(timeout=40)


def stored_pages(influx: Influx, bucket: str) -> list[str]:
    rows = influx.query('from(bucket: b) |> range(start: -1h) |> filter(fn: (r) => '
                        'r._measurement == "pageview" and r._field == "page")', b=bucket)
    return sorted(r["_value"] for r in rows)


@pytest.mark.parametrize("config", ["ours", "none"])
def test_a_graceful_stop_right_after_a_beacon_delivers_it(influx: Influx, bucket: str, tmp_path: Path,
                                                          config: str) -> None:
    """Under our gunicorn config (worker_exit) and under plain gunicorn with a mounted app (only
    the interpreter's exit): the point is in InfluxDB before anything starts again."""
    (tmp_path / "hostsite.py").write_text(MOUNTED_APP)
    env = {**influx.creds.as_env(), "SITE_ANALYTICS_BUCKET": bucket,
           "SITE_ANALYTICS_STATE_DIR": str(tmp_path / "state"),
           "SITE_ANALYTICS_PERMITTED_DOMAINS": "example.com",
           "SITE_ANALYTICS_FLUSH_INTERVAL": "5", "PYTHONPATH": str(tmp_path)}
    log = tmp_path / "gunicorn.log"
    args: tuple[str, ...] = ("--bind", "127.0.0.1:0") if config == "none" else ()
    server = Gunicorn(env, workers=1, log=log, app="hostsite:app", ready_path="/", extra_args=args)
    if config == "none":  # plain gunicorn: no config file at all (not even ./gunicorn.conf.py)
        server.child.args = [str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{server.port}",
                             "hostsite:app"]
        server.child.cwd = tmp_path
    server.start()
    beacon_then_sigterm(server, f"/stop-{config}")
    text = log.read_text()
    assert "Traceback" not in text and "cannot schedule new futures" not in text
    assert stored_pages(influx, bucket) == [f"/stop-{config}"]


def test_a_mounted_apps_interpreter_exit_delivers_what_it_accepted(influx: Influx, bucket: str,
                                                                   tmp_path: Path) -> None:
    (tmp_path / "hostsite.py").write_text(MOUNTED_APP)
    script = textwrap.dedent(f"""
        import json
        from hostsite import app
        client = app.test_client()
        resp = client.post("/analytics/pageview", headers={{"User-Agent": {CHROME_LIKE_UA!r},
                           "Content-Type": "text/plain"}},
                           data=json.dumps({{"domain": "example.com", "page": "/at-exit"}}))
        assert resp.status_code == 204, resp.status_code
    """)
    env = {**influx.creds.as_env(), "SITE_ANALYTICS_BUCKET": bucket,
           "SITE_ANALYTICS_STATE_DIR": str(tmp_path / "state"),
           "SITE_ANALYTICS_PERMITTED_DOMAINS": "example.com", "SITE_ANALYTICS_FLUSH_INTERVAL": "30",
           "PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert stored_pages(influx, bucket) == ["/at-exit"]


def test_the_exported_nginx_files_serve_every_agent_build(make_app: Any, tmp_path: Path) -> None:
    from analytics_bp.dev.localinflux import free_port
    from analytics_bp.dev.process import ChildProcess, http_ok
    from analytics_bp.snippet import AGENT_FILES

    app = make_app()
    exported = tmp_path / "exported"
    result = app.test_cli_runner().invoke(args=["analytics", "export", "nginx", str(exported)])
    assert result.exit_code == 0, result.output
    port = free_port()
    prefix = tmp_path / "nginx-prefix"
    prefix.mkdir()
    # The exported files as they are; only where this nginx listens and keeps its files is ours.
    example = (exported / "example.conf").read_text().replace("listen 80;", f"listen 127.0.0.1:{port};")
    (prefix / "site.conf").write_text(example)
    (prefix / "nginx.conf").write_text(textwrap.dedent(f"""
        {"user root;" if os.geteuid() == 0 else ""}
        worker_processes 1;
        pid {prefix}/nginx.pid;
        error_log {prefix}/error.log warn;
        events {{ worker_connections 64; }}
        http {{
            access_log off;
            client_body_temp_path {prefix}/body; proxy_temp_path {prefix}/proxy;
            fastcgi_temp_path {prefix}/fastcgi; uwsgi_temp_path {prefix}/uwsgi; scgi_temp_path {prefix}/scgi;
            include {prefix}/site.conf;
        }}
    """))
    nginx = ChildProcess("nginx", ["/usr/sbin/nginx", "-c", str(prefix / "nginx.conf"), "-p", str(prefix),
                                   "-g", "daemon off;"], prefix / "stderr.log", stop_signal=signal.SIGQUIT)
    nginx.start(http_ok(f"http://127.0.0.1:{port}/analytics/agent.js"), timeout=20)
    try:
        for name, file in AGENT_FILES.items():
            status, _, body = fetch(f"http://127.0.0.1:{port}/analytics/{name}")
            assert status == 200, name
            assert body == (ROOT / "analytics_bp" / "static" / file).read_bytes(), name
    finally:
        nginx.stop(timeout=10)
