"""The agent in real Chromium: exact requests, privacy skips, storage, end to end into InfluxDB."""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from analytics_bp import privacy
from tests.support.browser import ARTIFACTS, Recorder, module_collector
from tests.support.build import ROOT
from tests.support.influx import Influx
from tests.support.servers import Gunicorn, StaticSite
from tests.support.web import CHROME_UA

STUB = ("<script>window.recordEvent=window.recordEvent||function(){(window.recordEvent.q="
        "window.recordEvent.q||[]).push(arguments)}</script>")


def page_html(collector: str, attrs: str = "", head: str = "", script: str = "agent.js") -> str:
    return f"""<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
{head}<script defer src="{collector}/analytics/{script}" {attrs}></script></head>
<body><h1>Demo</h1>
<button id="share" data-analytics-event="socialclick" data-analytics-note="mastodon">
<span id="inner">Share</span></button><a id="plain" href="#top">plain</a></body></html>"""


collector = module_collector("t_agent", ANALYTICS_PERMITTED_DOMAINS="site.test,127.0.0.1",
                             ANALYTICS_PERMITTED_EVENTS="socialclick,signup",
                             ANALYTICS_NOTE_EVENTS="socialclick")


@pytest.fixture(scope="module")
def agent_bucket(collector: Gunicorn) -> str:
    return collector.env["ANALYTICS_BUCKET"]


def open_page(browser: Browser, url: str, init: str = "", **context: Any) -> tuple[Page, Recorder]:
    ctx = browser.new_context(user_agent=CHROME_UA, timezone_id="Asia/Tokyo", **context)
    if init:
        ctx.add_init_script(init)
    page = ctx.new_page()
    rec = Recorder(page)
    page.goto(url)
    return page, rec


def test_pageview_on_load_exact_request(browser: Browser, collector: Gunicorn) -> None:
    with StaticSite({"/index.html": page_html(collector.url)}) as site:
        url = f"http://site.test:{site.port}/index.html?utm_source=mail#frag"
        page, rec = open_page(browser, url)
        beacons = rec.wait_beacons(1)
        assert [k for k, _ in beacons] == ["pageview"], (rec.requests, rec.console)
        body = beacons[0][1]
        assert set(body) == {"domain", "page", "referrer", "timezone", "platform", "sess_id",
                             "pages", "load_ms"}
        assert body["domain"] == "site.test"
        assert body["page"] == f"http://site.test:{site.port}/index.html?utm_source=mail"
        assert body["referrer"] == "" and body["timezone"] == -540 and body["pages"] == 1
        assert body["platform"] == "Linux x86_64" and 0 <= body["load_ms"] < 10_000
        assert len(body["sess_id"]) >= 8
        assert rec.requests == [
            ("GET", url.split("#")[0]), ("GET", f"{collector.url}/analytics/agent.js"),
            ("POST", f"{collector.url}/analytics/pageview")]
        page.context.close()


def test_spa_navigation_one_session_no_duplicates(browser: Browser, collector: Gunicorn) -> None:
    with StaticSite({"*": page_html(collector.url)}) as site:
        base = f"http://site.test:{site.port}"
        page, rec = open_page(browser, base + "/app")
        rec.wait_beacons(1)
        for step in ["history.pushState({}, '', '/app/a')",
                     "history.replaceState({}, '', '/app/a')",  # same URL: no pageview
                     "history.pushState({}, '', '/app/b')",
                     "location.hash = 'section'",  # an anchor is not a pageview
                     "history.back()", "history.back()"]:
            page.evaluate(step)
            page.wait_for_timeout(250)
        beacons = rec.wait_beacons(4)
        pages = [(b["page"].removeprefix(base), b["pages"], b["referrer"].removeprefix(base))
                 for _, b in beacons]
        assert pages == [("/app", 1, ""), ("/app/a", 2, "/app"), ("/app/b", 3, "/app/a"),
                         ("/app/a", 4, "/app/b")]
        assert len({b["sess_id"] for _, b in beacons}) == 1
        assert all("load_ms" not in b for _, b in beacons[1:])
        page.context.close()


def test_hash_routing_counts_fragments_when_asked(browser: Browser, collector: Gunicorn) -> None:
    with StaticSite({"*": page_html(collector.url, "data-hash")}) as site:
        page, rec = open_page(browser, f"http://site.test:{site.port}/app#/home")
        rec.wait_beacons(1)
        page.evaluate("location.hash = '/settings'")
        beacons = rec.wait_beacons(2)
        assert [b["page"].split("/app")[1] for _, b in beacons] == ["#/home", "#/settings"]
        page.context.close()


def test_record_event_queued_before_load_and_after(browser: Browser, collector: Gunicorn) -> None:
    head = STUB + "<script>recordEvent('signup', 'early')</script>"
    with StaticSite({"*": page_html(collector.url, head=head)}) as site:
        page, rec = open_page(browser, f"http://site.test:{site.port}/")
        rec.wait_beacons(2)
        page.evaluate("recordEvent('socialclick', 'twitter')")
        page.evaluate("recordEvent('signup')")
        page.click("#inner")  # declarative: the click lands inside the marked element
        beacons = rec.wait_beacons(5)
        events = [(b["event"], b.get("note")) for k, b in beacons if k == "event"]
        assert events == [("signup", "early"), ("socialclick", "twitter"), ("signup", None),
                          ("socialclick", "mastodon")]
        assert [k for k, _ in beacons].count("pageview") == 1
        page.context.close()


SKIPS = {
    "dnt": "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})",
    "gpc": "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})",
    "opt-out": "localStorage.setItem('analytics_ignore', 'true')",
    "webdriver": "Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => true})",
}


@pytest.mark.parametrize("reason", list(SKIPS))
def test_privacy_skips_send_nothing(browser: Browser, collector: Gunicorn, reason: str) -> None:
    with StaticSite({"*": page_html(collector.url, script="agent.debug.js")}) as site:
        page, rec = open_page(browser, f"http://site.test:{site.port}/", init=SKIPS[reason])
        page.wait_for_timeout(500)
        page.evaluate("recordEvent('signup')")
        page.click("#share")
        assert rec.wait_beacons(1, timeout=1) == []
        assert [m for _, m in rec.requests if "/analytics/" in m] == [
            f"{collector.url}/analytics/agent.debug.js"]
        assert any(f"not sent ({reason})" in line.lower() for line in rec.console), rec.console
        page.context.close()


def test_default_build_logs_nothing(browser: Browser, collector: Gunicorn) -> None:
    with StaticSite({"*": page_html(collector.url)}) as site:
        page, rec = open_page(browser, f"http://site.test:{site.port}/", init=SKIPS["dnt"])
        page.wait_for_timeout(500)
        page.evaluate("recordEvent('signup')")
        assert rec.console == [] and rec.beacons == []
        page.context.close()


@pytest.mark.parametrize(("attrs", "expected"), [("", 0), ("data-allow-local", 1)])
def test_localhost_skipped_unless_allowed(browser: Browser, collector: Gunicorn, attrs: str,
                                          expected: int) -> None:
    with StaticSite({"*": page_html(collector.url, attrs)}) as site:
        page, rec = open_page(browser, f"http://127.0.0.1:{site.port}/")
        assert len(rec.wait_beacons(1, timeout=1.5)) == expected
        page.context.close()


def test_blocked_storage_still_works_in_memory(browser: Browser, collector: Gunicorn) -> None:
    block = ("Object.defineProperty(window, 'sessionStorage', {get() { throw new "
             "DOMException('blocked', 'SecurityError') }});"
             "Object.defineProperty(window, 'localStorage', {get() { throw new "
             "DOMException('blocked', 'SecurityError') }});")
    with StaticSite({"*": page_html(collector.url)}) as site:
        page, rec = open_page(browser, f"http://site.test:{site.port}/x", init=block)
        rec.wait_beacons(1)
        page.evaluate("history.pushState({}, '', '/y')")
        beacons = rec.wait_beacons(2)
        assert [b["pages"] for _, b in beacons] == [1, 2]
        assert len({b["sess_id"] for _, b in beacons}) == 1
        assert page.evaluate("typeof recordEvent") == "function"
        page.context.close()


def test_end_to_end_into_influxdb(browser: Browser, collector: Gunicorn, influx: Influx,
                                  agent_bucket: str) -> None:
    with StaticSite({"*": page_html(collector.url)}) as site:
        base = f"http://site.test:{site.port}"
        page, rec = open_page(browser, base + "/shop?utm_source=Mail")
        rec.wait_beacons(1)
        page.evaluate("history.pushState({}, '', '/shop/item')")
        rec.wait_beacons(2)
        page.click("#share")
        beacons = rec.wait_beacons(3)
        sess = beacons[0][1]["sess_id"]
        # stored keyed by the period's salt, never as sent (near midnight two salts may exist)
        salts = (Path(collector.env["ANALYTICS_STATE_DIR"]) / "salts").glob("salt-*")
        stored_as = [privacy.session_hash(p.read_bytes(), "site.test", sess) for p in salts]
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "agent-demo-page.png"))
        page.context.close()
    deadline = time.monotonic() + 10
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = influx.query(
            'from(bucket: b) |> range(start: -1h) '
            '|> filter(fn: (r) => r._measurement == "pageview" or r._measurement == "event") '
            '|> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value") '
            '|> filter(fn: (r) => contains(value: r.sess_id, set: s)) |> group() '
            '|> sort(columns: ["_time"])',
            b=agent_bucket, s=stored_as)
        if len(rows) == 3:
            break
        time.sleep(0.2)
    assert [(r["_measurement"], r["page"]) for r in rows] == [
        ("pageview", "/shop"), ("pageview", "/shop/item"), ("event", "/shop/item")]
    first, second, event = rows
    assert (first["domain"], first["source"], first["utm_source"], first["timezone"],
            first["platform"], first["browser"]) == ("site.test", "direct", "mail", "-540",
                                                     "linux", "Chrome")
    assert second["source"] == "internal"
    assert (event["event"], event["label"]) == ("socialclick", "mastodon")


def test_served_agent_is_within_budget_and_cached(collector: Gunicorn) -> None:
    import urllib.request

    with urllib.request.urlopen(collector.url + "/analytics/agent.js") as resp:
        data = resp.read()
        etag = resp.headers["ETag"]
        assert "max-age=86400" in resp.headers["Cache-Control"]
    assert len(gzip.compress(data, 9)) <= 850
    assert data == (ROOT / "agent_js" / "dist" / "agent.min.js").read_bytes()
    req = urllib.request.Request(collector.url + "/analytics/agent.js",
                                 headers={"If-None-Match": etag})
    try:
        urllib.request.urlopen(req)
        raise AssertionError("expected 304")
    except urllib.error.HTTPError as err:
        assert err.code == 304


def test_agent_source_rules() -> None:
    source = (ROOT / "agent_js" / "src" / "agent.js").read_text()
    for forbidden in ("document.cookie", "=>", "import ", "require(", "localStorage.setItem"):
        assert forbidden not in source, forbidden
    assert Path(ROOT / "agent_js" / "package-lock.json").exists()
