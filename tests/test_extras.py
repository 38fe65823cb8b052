"""The agent's extras end to end: outbound links, downloads and engaged time, from a click or a
scripted visible/hidden sequence in real Chromium, through the real gunicorn collector, into the
real influxd and out of the Stats API; plus the collector's rules for them, with a real InfluxDB."""

from __future__ import annotations

import contextlib
import gzip
import json
import statistics
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask, render_template_string
from playwright.sync_api import Browser, Page, sync_playwright

from analytics_bp import settings
from analytics_bp.points import line
from analytics_bp.snippet import agent_sri, script_tag
from analytics_bp.stats_engine import Engine
from analytics_bp.stats_query import QueryError, parse

from .conftest import CHROME_UA, Influx, flush
from .servers import CHROMIUM_ARGS, ROOT, Gunicorn, StaticSite
from .test_agent import Recorder, module_collector
from .test_collector import post, stored
from .test_rollups import make_dataset, rolled

__all__ = ["rolled"]  # the rolled-up dataset fixture of test_rollups, used here too

EXTRAS = "outbound,downloads,engagement"
BASE = {"domain": "example.com", "page": "https://example.com/post?utm_source=x&secret=s1#frag",
        "sess_id": "tab-1", "timezone": 0, "platform": "Linux x86_64"}


# -- the collector's rules (Flask test client, real InfluxDB) -------------------------------------

def test_extras_events_are_refused_unless_switched_on(make_app: Any, influx: Influx,
                                                      bucket: str) -> None:
    app = make_app()
    for body in ({**BASE, "event": "outbound", "note": "github.com/x"},
                 {**BASE, "event": "engagement", "engaged": 3, "pages": 1}):
        resp = post(app, "event", body)
        assert (resp.status_code, resp.headers["X-Analytics-Reason"]) == (400, "event not permitted")
    app = make_app(ANALYTICS_AGENT_EXTRAS="outbound")
    assert post(app, "event", {**BASE, "event": "outbound", "note": "github.com/x"}).status_code == 204
    assert post(app, "event", {**BASE, "event": "download", "note": "/a.pdf"}).status_code == 400
    # with the extra off, a site's own event of the same name is an ordinary event
    app = make_app(ANALYTICS_PERMITTED_EVENTS="engagement,download", ANALYTICS_NOTE_EVENTS="")
    assert post(app, "event", {**BASE, "event": "engagement", "note": "newsletter"}).status_code == 204
    assert post(app, "event", {**BASE, "event": "download", "note": ""}).status_code == 204
    flush(app)
    rows = [r for r in stored(influx, bucket, "event") if r["event"] != "outbound"]
    assert sorted((r["event"], r.get("note") or "", r.get("file")) for r in rows) == [
        ("download", "", None), ("engagement", "newsletter", None)]
    assert stored(influx, bucket, "engagement") == []


def test_link_and_engagement_points_keep_host_and_path_only(make_app: Any, influx: Influx,
                                                            bucket: str) -> None:
    app = make_app(ANALYTICS_AGENT_EXTRAS=EXTRAS)
    sent = [
        {"event": "outbound", "note": "GitHub.com/org/repo?token=t0p#readme"},
        {"event": "download", "note": "example.com/files/Report%20Q1.pdf?sig=abc"},
        {"event": "download", "note": "/files/b.zip#x"},
        {"event": "download", "note": "cdn.example.net/x.zip?expires=1"},
        {"event": "engagement", "engaged": 42, "pages": 3},
        {"event": "engagement", "engaged": 5000, "pages": 4},  # capped at an hour
    ]
    for body in sent:
        resp = post(app, "event", {**BASE, **body})
        assert resp.status_code == 204, resp.get_data(as_text=True)
    flush(app)
    links = sorted(((r["event"], r.get("destination"), r.get("file"), r["note"], r["page"])
                    for r in stored(influx, bucket, "event")), key=str)
    assert links == sorted([
        ("outbound", "github.com", None, "github.com/org/repo", "/post"),
        ("download", None, "/files/Report Q1.pdf", "/files/Report Q1.pdf", "/post"),
        ("download", None, "/files/b.zip", "/files/b.zip", "/post"),
        ("download", None, "cdn.example.net/x.zip", "cdn.example.net/x.zip", "/post"),
    ], key=str)
    engaged = sorted((r["page"], r["seconds"], r["pageview"], len(r["sess_id"]), r["browser"])
                     for r in stored(influx, bucket, "engagement"))
    assert engaged == [("/post", 42, 3, 16, "Chrome"), ("/post", 3600, 4, 16, "Chrome")]
    assert all("visitor" not in r and "count" not in r for r in stored(influx, bucket, "engagement"))
    everything = json.dumps(influx.raw_rows(bucket), default=str)
    for secret in ("?", "#", "token", "t0p", "sig=", "expires", "secret", "s1", "utm_source=x", "tab-1"):
        assert secret not in everything, secret


BAD = [
    ({"event": "outbound", "note": ""}, "bad field: note"),
    ({"event": "outbound", "note": "/only/a/path"}, "bad field: note"),
    ({"event": "outbound", "note": "example.com/own/site"}, "bad field: note"),
    ({"event": "outbound", "note": "not a host/x"}, "bad field: note"),
    ({"event": "download", "note": ""}, "bad field: note"),
    ({"event": "engagement", "pages": 1}, "missing field: engaged"),
    ({"event": "engagement", "engaged": 3}, "missing field: pages"),
    ({"event": "engagement", "engaged": -1, "pages": 1}, "bad field: engaged"),
    ({"event": "engagement", "engaged": 86_401, "pages": 1}, "bad field: engaged"),
    ({"event": "engagement", "engaged": "5", "pages": 1}, "bad field: engaged"),
    ({"event": "engagement", "engaged": True, "pages": 1}, "bad field: engaged"),
    ({"event": "engagement", "engaged": 5, "pages": 0}, "bad field: pages"),
    ({"event": "engagement", "engaged": 5, "pages": 1, "sess_id": ""}, "missing field: sess_id"),
]


@pytest.mark.parametrize(("body", "reason"), BAD, ids=[r + " " + json.dumps(b) for b, r in BAD])
def test_bad_extras_beacons_are_400_and_store_nothing(make_app: Any, influx: Influx, bucket: str,
                                                      body: dict[str, Any], reason: str) -> None:
    app = make_app(ANALYTICS_AGENT_EXTRAS=EXTRAS)
    resp = post(app, "event", {**BASE, **body})
    assert (resp.status_code, resp.headers["X-Analytics-Reason"]) == (400, reason)
    flush(app)
    assert stored(influx, bucket, "event") == [] and stored(influx, bucket, "engagement") == []


def test_destinations_and_files_are_bounded_by_the_cardinality_guard(make_app: Any, influx: Influx,
                                                                     bucket: str) -> None:
    app = make_app(ANALYTICS_AGENT_EXTRAS=EXTRAS, ANALYTICS_MAX_TAG_VALUES="3")
    for i in range(6):
        assert post(app, "event", {**BASE, "event": "outbound", "note": f"h{i}.example/"}).status_code == 204
        assert post(app, "event", {**BASE, "event": "download", "note": f"/f{i}.pdf"}).status_code == 204
    flush(app)
    rows = stored(influx, bucket, "event")
    assert sorted(r["destination"] for r in rows if r["event"] == "outbound") == [
        "(other)", "(other)", "(other)", "h0.example", "h1.example", "h2.example"]
    assert sorted(r["file"] for r in rows if r["event"] == "download") == [
        "(other)", "(other)", "(other)", "/f0.pdf", "/f1.pdf", "/f2.pdf"]


def test_script_tag_switches_to_the_extras_build(make_app: Any) -> None:
    assert 'src="/analytics/agent.js"' in script_tag("/analytics")
    tag = script_tag("/analytics", outbound=True, downloads="pdf,zip", engagement=True)
    assert tag == ('<script defer src="/analytics/agent.extras.js" integrity="'
                   + agent_sri("agent.extras.min.js") + '" crossorigin="anonymous" data-outbound '
                   'data-downloads="pdf,zip" data-engagement></script>')
    app: Flask = make_app(ANALYTICS_AGENT_EXTRAS=EXTRAS)
    with app.test_request_context("/"):
        html = render_template_string("{{ analytics_script(downloads=True) }}")
    assert 'src="/analytics/agent.extras.js"' in html and " data-downloads>" in html
    with pytest.raises(TypeError):
        script_tag("/analytics", clicks=True)


def test_privacy_notice_lists_each_switched_on_extra(make_app: Any) -> None:
    off = make_app().test_client().get("/analytics/privacy", headers={"Accept": "application/json"})
    assert off.get_json()["collected"]["extras"] == []
    assert "Links and time on page" not in make_app().test_client().get("/analytics/privacy").get_data(
        as_text=True)
    app = make_app(ANALYTICS_AGENT_EXTRAS="outbound,engagement")
    notice = app.test_client().get("/analytics/privacy", headers={"Accept": "application/json"}).get_json()
    assert len(notice["collected"]["extras"]) == 2
    assert notice["collected"]["extras"][0].startswith("Clicks on links to other sites: the "
                                                       "destination's host and path")
    assert notice["collected"]["extras"][1].startswith("Time on page: whole seconds")
    assert notice["settings"]["ANALYTICS_AGENT_EXTRAS"] == (
        "Also recorded: outbound link clicks, time on page.")
    page = app.test_client().get("/analytics/privacy").get_data(as_text=True)
    assert "<h3>Links and time on page</h3>" in page and "links to files" not in page
    every = make_app(ANALYTICS_AGENT_EXTRAS=EXTRAS).test_client().get(
        "/analytics/privacy", headers={"Accept": "application/json"}).get_json()["collected"]["extras"]
    assert [line.split(":")[0] for line in every] == [
        "Clicks on links to other sites", "Clicks on links to files (such as PDF or ZIP)", "Time on page"]


def test_bad_extras_setting_is_one_config_error(make_app: Any) -> None:
    with pytest.raises(settings.ConfigError, match=r"ANALYTICS_AGENT_EXTRAS='outbound,clicks': "
                                                   "expected a comma list of outbound, downloads, "
                                                   "engagement; unknown: clicks"):
        make_app(ANALYTICS_AGENT_EXTRAS="outbound,clicks")


# -- real Chromium, real gunicorn, real influxd ---------------------------------------------------

collector = module_collector("t_extras", ANALYTICS_PERMITTED_DOMAINS="site.test",
                             ANALYTICS_AGENT_EXTRAS=EXTRAS)


@pytest.fixture(scope="module")
def extras_bucket(collector: Gunicorn) -> str:
    return collector.env["ANALYTICS_BUCKET"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    args = [a for a in CHROMIUM_ARGS if not a.startswith("--host-resolver-rules")]
    # The browser-wide User-Agent too: a keepalive request that outlives its page is sent by the
    # browser process, without the context's override (HeadlessChrome is a bot: ignored).
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium",
                               args=[*args, "--host-resolver-rules=MAP *.test 127.0.0.1",
                                     f"--user-agent={CHROME_UA}"])
        yield b
        b.close()


# Pages cannot be hidden in headless Chromium (tabs and minimised windows stay "visible"), so the
# sequence is scripted: document.hidden/visibilityState follow window.__hide(), which also fires
# the visibilitychange event a browser fires.
VISIBILITY = """
(() => {
  let hidden = false;
  Object.defineProperty(Document.prototype, 'hidden', {get: () => hidden});
  Object.defineProperty(Document.prototype, 'visibilityState', {get: () => hidden ? 'hidden' : 'visible'});
  window.__hide = (h) => { hidden = h; document.dispatchEvent(new Event('visibilitychange')); };
})();
"""


def site_page(collector: str, attrs: str = "data-outbound data-downloads data-engagement") -> str:
    return f"""<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script defer src="{collector}/analytics/agent.extras.js" {attrs}></script></head><body>
<a id="out" href="http://elsewhere.test:PORT/landing/page?token=secret#top">elsewhere</a>
<a id="file" href="/files/report.pdf?sig=secret">report</a>
<a id="mail" href="mailto:someone@site.test">mail</a>
<a id="inside" href="/next">next</a>
<a id="other-type" href="/files/notes.odt">notes</a></body></html>"""


LINKS_ONLY = "data-outbound data-downloads"  # no engaged time: a navigation would send it too


def open_site(browser: Browser, site: StaticSite, path: str, init: str = VISIBILITY
              ) -> tuple[Page, Recorder, float]:
    """The page, its recorder (after the first pageview) and when it started loading."""
    ctx = browser.new_context(user_agent=CHROME_UA)
    ctx.add_init_script(init)
    page = ctx.new_page()
    rec = SiteRecorder(page)
    started = time.monotonic()
    page.goto(f"http://site.test:{site.port}{path}")
    rec.wait_beacons(1)
    return page, rec, started


class SiteRecorder(Recorder):
    """Also keeps which origin sent each beacon (pages of elsewhere.test load the agent too)."""

    def __init__(self, page: Page) -> None:
        self.origins: list[tuple[str, str]] = []
        super().__init__(page)

    def _on_request(self, request: Any) -> None:
        if request.method == "POST" and "/analytics/" in request.url:
            headers = request.headers
            self.origins.append((request.url.rsplit("/", 1)[1],
                                 headers.get("origin") or headers.get("referer") or ""))
        with contextlib.suppress(TypeError):  # sent during unload: Chromium keeps no body
            super()._on_request(request)


def posts(rec: Recorder, site: StaticSite) -> list[str]:
    """The kinds of beacon the site.test pages sent, in order."""
    assert isinstance(rec, SiteRecorder)
    return [kind for kind, origin in rec.origins if origin.startswith(f"http://site.test:{site.port}")]


def influx_rows(influx: Influx, bucket: str, measurement: str, want: int,
                where: str = "true", timeout: float = 10) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = influx.query(
            'from(bucket: b) |> range(start: -1h) |> filter(fn: (r) => r._measurement == m) '
            '|> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value") '
            f'|> filter(fn: (r) => {where}) |> group() |> sort(columns: ["_time"])',
            b=bucket, m=measurement)
        if len(rows) >= want:
            break
        time.sleep(0.2)
    return rows


class Site(StaticSite):
    """The test site on site.test, its links pointing at elsewhere.test on the same server."""

    def __init__(self, collector: Gunicorn, attrs: str = LINKS_ONLY) -> None:
        super().__init__({})
        self.pages["*"] = site_page(collector.url, attrs).replace("PORT", str(self.port))


def test_outbound_click_that_navigates_away_still_lands(browser: Browser, collector: Gunicorn,
                                                        influx: Influx, extras_bucket: str) -> None:
    marker = uuid.uuid4().hex[:8]
    with Site(collector) as site:
        page, rec, _ = open_site(browser, site, f"/out-{marker}")
        page.click("#out")  # a left click: the page is replaced by elsewhere.test at once
        page.wait_for_url(f"http://elsewhere.test:{site.port}/landing/page?token=secret#top")
        page.wait_for_timeout(300)
        page.context.close()
    [row] = influx_rows(influx, extras_bucket, "event", 1, f'r.page == "/out-{marker}"')
    assert (row["event"], row["destination"], row["note"], row["domain"]) == (
        "outbound", "elsewhere.test", "elsewhere.test/landing/page", "site.test")
    assert posts(rec, site) == ["pageview", "event"]


def test_middle_click_and_keyboard_count_and_plain_links_do_not(
        browser: Browser, collector: Gunicorn, influx: Influx, extras_bucket: str) -> None:
    marker = uuid.uuid4().hex[:8]
    with Site(collector) as site:
        page, rec, _ = open_site(browser, site, f"/keys-{marker}")
        page.click("#mail")  # no host: not counted
        page.click("#inside")  # same site, not a file: not counted (it navigates)
        page.wait_for_url("**/next")
        rec.wait_beacons(2)
        page.click("#out", button="middle")  # opens a new tab; this page stays
        page.click("#out", button="right")  # a context menu is not a visit
        page.wait_for_timeout(500)
        # the browser sends the host and path only (no port, query or fragment)
        assert [(k, b.get("event"), b.get("note")) for k, b in rec.beacons] == [
            ("pageview", None, None), ("pageview", None, None),
            ("event", "outbound", "elsewhere.test/landing/page")]
        page.focus("#out")
        page.keyboard.press("Enter")
        page.wait_for_url("**/landing/page*")
        page.wait_for_timeout(300)
        page.context.close()
    assert posts(rec, site) == ["pageview", "pageview", "event", "event"]
    rows = influx_rows(influx, extras_bucket, "event", 2, 'r.page == "/next"')
    assert [(r["event"], r["destination"]) for r in rows] == [("outbound", "elsewhere.test")] * 2


def test_download_click_lands_with_the_path_only(browser: Browser, collector: Gunicorn,
                                                 influx: Influx, extras_bucket: str) -> None:
    marker = uuid.uuid4().hex[:8]
    # with the default list, the .odt link is not a download (and outbound does not apply)
    assert click_through(browser, collector, LINKS_ONLY, f"/dl-{marker}", "#other-type", "#file") == 1
    [row] = influx_rows(influx, extras_bucket, "event", 1, f'r.page == "/dl-{marker}"')
    assert (row["event"], row["file"], row["note"]) == ("download", "/files/report.pdf",
                                                        "/files/report.pdf")
    # data-downloads="odt,txt" replaces the default list: now the pdf is not a download
    assert click_through(browser, collector, 'data-downloads="odt,txt"', f"/dl2-{marker}",
                         "#file", "#other-type") == 1
    [row] = influx_rows(influx, extras_bucket, "event", 1, f'r.page == "/dl2-{marker}"')
    assert (row["event"], row["file"]) == ("download", "/files/notes.odt")


def click_through(browser: Browser, collector: Gunicorn, attrs: str, path: str, first: str,
                  second: str) -> int:
    """Open `path`, follow the link `first`, come back, follow `second`: the events sent."""
    with Site(collector, attrs) as site:
        page, rec, _ = open_site(browser, site, path)
        for selector in (first, second):
            target = page.get_attribute(selector, "href") or ""
            page.click(selector)
            page.wait_for_url("**" + target.split("?")[0] + "*")
            if selector == first:
                page.go_back()
                rec.wait_beacons(2)
        page.wait_for_timeout(300)
        page.context.close()
        return posts(rec, site).count("event")


def test_engaged_time_follows_a_scripted_visible_hidden_sequence(
        browser: Browser, collector: Gunicorn, influx: Influx, extras_bucket: str) -> None:
    marker = uuid.uuid4().hex[:8]
    with Site(collector, "data-engagement") as site:
        page, rec, started = open_site(browser, site, f"/read-{marker}")
        # the page's own clock (ms since navigation) at each step; the agent starts counting when
        # it runs, just after the document is parsed (a deferred script)
        clock = "performance.now()"
        start = page.evaluate("performance.timing.domInteractive - performance.timing.navigationStart")
        page.wait_for_timeout(max(0.0, 2500 - 1000 * (time.monotonic() - started)))
        assert posts(rec, site) == ["pageview"]  # nothing while the page is visible
        hidden = page.evaluate(f"(__hide(true), {clock})")  # hidden: the first total is sent
        page.wait_for_timeout(3000)  # hidden time never counts
        assert posts(rec, site) == ["pageview", "event"]
        shown = page.evaluate(f"(__hide(false), {clock})")
        page.wait_for_timeout(1500)
        replaced = page.evaluate(f"(history.pushState({{}}, '', '/spa-next'), {clock})")  # an SPA page
        page.wait_for_timeout(2000)
        assert posts(rec, site) == ["pageview", "event", "event", "pageview"]
        left = page.evaluate(clock)
        page.goto(f"http://site.test:{site.port}/gone")  # pagehide: the SPA page's time is sent
        page.wait_for_timeout(500)
        page.context.close()
    rows = influx_rows(influx, extras_bucket, "engagement", 3,
                       f'r.page == "/read-{marker}" or r.page == "/spa-next"')
    sent = [(r["page"], r["pageview"], r["seconds"]) for r in rows]
    assert [(p, n) for p, n, _ in sent] == [(f"/read-{marker}", 1), (f"/read-{marker}", 1),
                                            ("/spa-next", 2)]
    # about 2.5 s visible, 3 s hidden, 1.5 s visible; then the SPA page 2 s: each total within a
    # second of the visible time the page's clock saw (rounded to whole seconds by the agent)
    first = (hidden - start) / 1000
    expected = [first, first + (replaced - shown) / 1000, (left - replaced) / 1000]
    assert all(abs(got - want) <= 1 for (_, _, got), want in zip(sent, expected, strict=True)), (
        sent, expected)
    assert 1.5 <= expected[0] <= 4 and sent[1][2] - sent[0][2] < 3  # hidden time not counted
    # the Stats API counts the pageview once, with its last (largest) total
    cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": "site.test", "ANALYTICS_BUCKET": extras_bucket,
                         "ANALYTICS_RAW_RETENTION": "0"})
    engine = Engine(cfg, influx.admin, lambda suffix: None)
    today = datetime.now(UTC).date()
    query = parse({"site_id": "site.test", "metrics": ["time_on_page"], "date_range": "day",
                   "dimensions": ["event:page"], "filters": [["is", "event:page", [f"/read-{marker}"]]]},
                  lambda: ["site.test"], "UTC", today, engine.first_day)
    assert engine.run(query)["results"] == [{"metrics": [float(sent[1][2])],
                                             "dimensions": [f"/read-{marker}"]}]


@pytest.mark.parametrize("flag", ["doNotTrack", "globalPrivacyControl"])
def test_dnt_and_gpc_send_nothing_from_the_extras(browser: Browser, collector: Gunicorn,
                                                  flag: str) -> None:
    value = "'1'" if flag == "doNotTrack" else "true"
    init = VISIBILITY + f"Object.defineProperty(Navigator.prototype, '{flag}', {{get: () => {value}}});"
    with Site(collector, LINKS_ONLY + " data-engagement") as site:
        ctx = browser.new_context(user_agent=CHROME_UA)
        ctx.add_init_script(init)
        page = ctx.new_page()
        rec = SiteRecorder(page)
        page.goto(f"http://site.test:{site.port}/private")
        page.wait_for_timeout(1500)
        page.click("#out", button="middle")
        page.evaluate("__hide(true)")
        page.click("#file")
        page.wait_for_url("**/files/report.pdf*")
        page.wait_for_timeout(500)
        ctx.close()
    assert [m for m, _ in rec.requests if m == "POST"] == []
    assert [u for m, u in rec.requests if collector.url in u] == [
        f"{collector.url}/analytics/agent.extras.js"] * 2  # one per page load, nothing else


def test_no_query_string_or_fragment_in_any_stored_value(
        browser: Browser, collector: Gunicorn, influx: Influx, extras_bucket: str) -> None:
    # runs after the tests above (file order): everything they stored is scanned
    rows = influx.raw_rows(extras_bucket)
    assert {r["_measurement"] for r in rows} >= {"pageview", "event", "engagement"}
    text = json.dumps(rows, default=str)
    for needle in ("?", "#", "token", "secret", "sig=", "utm_source=x"):
        assert needle not in text, needle


def test_served_builds_are_within_their_budgets(collector: Gunicorn) -> None:
    for name, built, budget in (("agent.js", "agent.min.js", 850),
                                ("agent.extras.js", "agent.extras.min.js", 1100)):
        with urllib.request.urlopen(f"{collector.url}/analytics/{name}") as resp:
            data = resp.read()
            assert "max-age=86400" in resp.headers["Cache-Control"]
        assert data == (ROOT / "agent_js" / "dist" / built).read_bytes()
        assert len(gzip.compress(data, 9)) <= budget, name
    default = (ROOT / "agent_js" / "dist" / "agent.min.js").read_text()
    for extra_only in ("auxclick", "engagement", "outbound", "visibilitychange"):
        assert extra_only not in default  # the default build carries none of the extras' code


def test_visit_duration_and_time_on_page_refuse_what_they_cannot_answer() -> None:
    for body, reason in (
            ({"metrics": ["visit_duration"], "dimensions": ["event:page"]}, "visit_duration cannot be "
             "grouped or filtered by event:page"),
            ({"metrics": ["time_on_page"], "dimensions": ["visit:source"]}, "time_on_page cannot be "
             "grouped or filtered by source or UTM"),
            ({"metrics": ["time_on_page"], "dimensions": ["event:props:destination"]},
             "time_on_page cannot be grouped or filtered by event:name or event:props:*"),
            ({"metrics": ["pageviews"], "filters": [["is", "event:props:file", ["/a.pdf"]]]},
             "pageviews cannot be grouped or filtered by event:name or event:props:*")):
        with pytest.raises(QueryError, match=reason):
            parse({"site_id": "a.example", "date_range": "7d", **body}, lambda: ["a.example"], "UTC",
                  date(2026, 11, 23), lambda site: None)


# -- the Stats API on rolled-up extras (test_rollups' dataset: b.example has them) ----------------

def weighted(pairs: list[tuple[float, int]]) -> float:
    """The documented median over rolled-up days, computed here again."""
    total, running = sum(w for _, w in pairs), 0
    for value, weight in sorted(pairs):
        running += weight
        if running * 2 >= total:
            return value
    raise AssertionError("no weights")


def expected_time_on_page(mode: str, page: str | None = None) -> float:
    from .test_rollups import DAYS, engaged_views

    days = [engaged_views(day, page) for day in DAYS]
    if mode == "rollups":  # every day from the rollups: one exact median per (page and) day
        return weighted([(float(statistics.median(v.values())), len(v)) for v in days if v])
    return float(statistics.median([s for v in days for s in v.values()]))  # raw: exact


@pytest.mark.parametrize("mode", ["raw", "rollups", "mixed"])
def test_time_on_page_visit_duration_and_link_dimensions_in_every_mode(
        influx: Influx, rolled: Any, mode: str) -> None:
    from .test_rollups import DAYS, LINKS, engaged_views
    from .test_stats import MODES

    bucket, _ = rolled
    cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": "a.example,b.example", "ANALYTICS_BUCKET": bucket,
                         "ANALYTICS_RAW_RETENTION": "0"})
    engine = Engine(cfg, influx.admin, lambda suffix: MODES[mode])
    # mixed: only 2026-02-28 (no engaged time) from the rollups, so the days with it are raw
    exact_mode = "rollups" if mode == "rollups" else "raw"

    def ask(**body: Any) -> dict[str, Any]:
        return engine.run(parse({"site_id": "b.example", "date_range": ["2026-02-28", "2026-03-02"],
                                 **body}, lambda: ["a.example", "b.example"], "UTC", date(2026, 11, 23),
                                engine.first_day))

    views = [engaged_views(day) for day in DAYS]
    duration = round(sum(sum(v.values()) for v in views) / sum(len({s for _, s, _ in v}) for v in views))
    total = ask(metrics=["time_on_page", "visit_duration", "pageviews"])
    dataset_pages = Counter(r["page"] for r in make_dataset() if r["domain"] == "b.example")
    assert total["results"] == [{"metrics": [expected_time_on_page(exact_mode), duration,
                                             sum(dataset_pages.values())], "dimensions": []}]
    assert (expected_time_on_page("raw"), expected_time_on_page("rollups"), duration) == (12.0, 21.0, 40)
    by_day = ask(metrics=["time_on_page", "visit_duration"], dimensions=["time:day"])
    assert by_day["results"] == [
        {"metrics": [float(statistics.median(v.values())),
                     round(sum(v.values()) / len({s for _, s, _ in v}))],
         "dimensions": [day.date().isoformat()]} for day, v in zip(DAYS, views, strict=True) if v]
    pages = ask(metrics=["pageviews", "time_on_page"], dimensions=["event:page"],
                filters=[["is", "event:page", ["/p0", "/p1"]]], order_by=[["event:page", "asc"]])
    assert pages["results"] == [
        {"metrics": [dataset_pages[p], expected_time_on_page(exact_mode, p)], "dimensions": [p]}
        for p in ("/p0", "/p1")]
    if mode == "rollups":
        assert sorted(pages["meta"]["answered_from"]["rollups"]) == [f"{bucket}_1d:engagement",
                                                                    f"{bucket}_1d:pages"]
    links = Counter((event, value) for _, event, _, value in LINKS)
    for dimension, event in (("event:props:destination", "outbound"), ("event:props:file", "download")):
        answer = ask(metrics=["events"], dimensions=[dimension])
        assert answer["results"] == [{"metrics": [n], "dimensions": [value]} for (e, value), n in
                                     sorted(links.items(), key=lambda kv: (-kv[1], kv[0])) if e == event]
    github = ask(metrics=["events", "visitors"], filters=[["is", "event:props:destination", ["github.com"]]])
    assert github["results"][0]["metrics"][0] == 2


def test_a_malformed_engagement_point_cannot_stop_the_daily_rollup(influx: Influx, bucket: str) -> None:
    """An engagement point the collector would never write (no session hash) is left out by the
    daily task; the task succeeds and every other figure of the day is rolled up."""
    from .test_rollups import DAYS, run, setup_rollups, write

    at = int((DAYS[1] + timedelta(hours=10)).timestamp() * 1e9)
    tags = {"domain": "a.example", "page": "/p"}
    write(influx, bucket, [
        line("pageview", {**tags, "source": "direct"}, {"count": 1, "visitor": "v", "sess_id": "s"}, at),
        line("engagement", tags, {"sess_id": "s", "seconds": 7, "pageview": 1}, at + 1),
        line("engagement", tags, {"seconds": 99, "pageview": 1}, at + 2),
    ])
    setup_rollups(influx, bucket)
    run(influx, bucket, "daily", DAYS[1] + timedelta(days=1, hours=1))
    traffic = {r["_field"]: r["_value"] for r in influx.query(
        'from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement == "traffic")',
        b=bucket + "_1d")}
    assert (traffic["pageviews"], traffic["engaged_views"], traffic["visit_seconds"]) == (1, 1, 7)
