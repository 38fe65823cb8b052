"""Production path: a real nginx (the shipped config) in front of a real gunicorn, real influxd."""

from __future__ import annotations

import gzip
import http.client
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.influx import Influx
from tests.support.servers import CHROME_LIKE_UA, Gunicorn, Nginx, wait_http


def beacon(sess: str, **extra: Any) -> bytes:
    # The stored session ID is a keyed hash (issue 16): the test finds its points by page path.
    return json.dumps({"domain": "example.com", "page": f"/prod/{sess}", "sess_id": sess,
                       "timezone": 0, **extra}).encode()


def post(url: str, body: bytes, **headers: str) -> http.client.HTTPResponse:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("POST", parts.path, body=body, headers={
        "Content-Type": "text/plain", "User-Agent": CHROME_LIKE_UA, **headers})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def stored_for(influx: Influx, bucket: str, sess: str, expect: int,
               timeout: float = 10) -> list[dict[str, Any]]:
    """The pageviews of one session, once `expect` of them are in (or the timeout passed)."""
    query = ('from(bucket: b) |> range(start: -1h) |> filter(fn: (r) => r._measurement == '
             '"pageview") |> pivot(rowKey: ["_time"], columnKey: ["_field"], '
             'valueColumn: "_value") |> filter(fn: (r) => r.page == "/prod/" + s) |> group()')
    deadline = time.monotonic() + timeout
    rows = influx.query(query, b=bucket, s=sess)
    while len(rows) < expect and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = influx.query(query, b=bucket, s=sess)
    time.sleep(0.4)  # nothing beyond the expected may arrive
    return influx.query(query, b=bucket, s=sess)


@pytest.fixture
def stack(influx: Influx, bucket: str, tmp_path: Path) -> Iterator[tuple[Gunicorn, Nginx]]:
    env = {**influx.creds.as_env(), "ANALYTICS_BUCKET": bucket,
           "ANALYTICS_PERMITTED_DOMAINS": "example.com", "ANALYTICS_TRUSTED_PROXIES": "1",
           "ANALYTICS_STATE_DIR": str(tmp_path / "state"), "ANALYTICS_FLUSH_INTERVAL": "0.2"}
    with Gunicorn(env, workers=2) as gunicorn, Nginx(f"127.0.0.1:{gunicorn.port}", tmp_path) as nginx:
        yield gunicorn, nginx


def test_beacons_through_nginx_are_stored_and_logged_without_ips(
    stack: tuple[Gunicorn, Nginx], influx: Influx, bucket: str
) -> None:
    _, nginx = stack
    sess = uuid.uuid4().hex[:12]
    for _ in range(3):
        assert post(nginx.url + "/analytics/pageview", beacon(sess)).status == 204
    rows = stored_for(influx, bucket, sess, expect=3)
    assert len(rows) == 3
    log = nginx.access_log()
    assert log.count('"POST /analytics/pageview" 204') == 3
    assert "127.0.0.1" not in log and "Mozilla" not in log


def test_spoofed_forwarded_for_does_not_change_the_visitor(
    stack: tuple[Gunicorn, Nginx], influx: Influx, bucket: str
) -> None:
    _, nginx = stack
    sess = uuid.uuid4().hex[:12]
    for spoof in (None, "1.2.3.4", "5.6.7.8, 9.9.9.9"):
        headers = {"X-Forwarded-For": spoof} if spoof else {}
        assert post(nginx.url + "/analytics/pageview", beacon(sess), **headers).status == 204
    rows = stored_for(influx, bucket, sess, expect=3)
    assert len(rows) == 3 and len({r["visitor"] for r in rows}) == 1


def test_oversize_body_gets_413(stack: tuple[Gunicorn, Nginx]) -> None:
    _, nginx = stack
    big = beacon("x", pad="y" * 6000)
    assert post(nginx.url + "/analytics/pageview", big).status == 413


def test_burst_gets_429s_and_every_204_is_stored(
    stack: tuple[Gunicorn, Nginx], influx: Influx, bucket: str
) -> None:
    _, nginx = stack
    sess = uuid.uuid4().hex[:12]
    statuses = [post(nginx.url + "/analytics/pageview", beacon(sess)).status for _ in range(80)]
    assert set(statuses) == {204, 429}
    ok = statuses.count(204)
    assert 20 <= ok < 80
    assert len(stored_for(influx, bucket, sess, expect=ok)) == ok


@pytest.mark.parametrize(("path", "built"), [("agent.js", "agent.min.js"),
                                             ("agent.extras.js", "agent.extras.min.js")])
def test_agent_served_by_nginx_with_caching_headers(stack: tuple[Gunicorn, Nginx], path: str,
                                                    built: str) -> None:
    _, nginx = stack
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=5)
    conn.request("GET", f"/analytics/{path}", headers={"Accept-Encoding": "gzip"})
    resp = conn.getresponse()
    body = resp.read()
    assert resp.status == 200
    assert resp.getheader("Content-Encoding") == "gzip"
    assert "max-age=86400" in resp.getheader("Cache-Control", "")
    assert resp.getheader("Content-Type", "").startswith("application/javascript")
    etag = resp.getheader("ETag")
    assert etag
    served = Path(__file__).parents[2] / "analytics_bp" / "static" / built
    assert gzip.decompress(body) == served.read_bytes()
    conn.request("GET", f"/analytics/{path}", headers={"If-None-Match": etag})
    again = conn.getresponse()
    again.read()
    assert again.status == 304


def test_health_through_nginx(stack: tuple[Gunicorn, Nginx]) -> None:
    gunicorn, nginx = stack
    wait_http(nginx.url + "/analytics/health")
    # Public through nginx: the status only (issue 16); on the host itself: the details.
    with urllib.request.urlopen(nginx.url + "/analytics/health") as resp:
        assert json.loads(resp.read()) == {"status": "ok"}
    with urllib.request.urlopen(gunicorn.url + "/analytics/health") as resp:
        assert {"status", "influxdb", "writer"} <= set(json.loads(resp.read()))


def test_no_log_of_the_stack_holds_the_client_address(stack: tuple[Gunicorn, Nginx],
                                                       tmp_path: Path) -> None:
    """From 127.0.0.2 (so the client's address differs from the upstream's): a 413, a burst of
    429s and upstream errors, then every log nginx and gunicorn wrote is read (issue 16)."""
    from urllib.parse import urlsplit

    gunicorn, nginx = stack
    parts = urlsplit(nginx.url)

    def send(body: bytes) -> int:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10,
                                          source_address=("127.0.0.2", 0))
        conn.request("POST", "/analytics/pageview", body=body, headers={
            "Content-Type": "text/plain", "User-Agent": CHROME_LIKE_UA})
        status = conn.getresponse().status
        conn.close()
        return status

    assert send(beacon("x", pad="y" * 6000)) == 413
    assert 429 in [send(beacon("burst")) for _ in range(60)]
    gunicorn.stop()
    time.sleep(1.2)  # the rate limit's bucket refills
    assert send(beacon("down")) == 502
    logs = {p.name: p.read_text(errors="replace") for p in nginx.prefix.glob("*.log")}
    logs["gunicorn"] = gunicorn.log_path.read_text(errors="replace")
    assert {"error.log", "analytics-error.log", "analytics.log"} <= set(logs)
    assert "429" in logs["analytics.log"] and "413" in logs["analytics.log"]
    for name, text in logs.items():
        assert "127.0.0.2" not in text, name
        assert "client: " not in text, name
