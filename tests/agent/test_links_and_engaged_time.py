"""The agent's extras end to end: outbound links, downloads and engaged time, from a click or a
scripted visible/hidden sequence in real Chromium, through the real gunicorn collector, into the
real influxd."""

from __future__ import annotations

import contextlib
import gzip
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from analytics_bp import settings
from analytics_bp.stats.engine import Engine
from analytics_bp.stats.query import parse
from tests.support.browser import Recorder, module_collector
from tests.support.build import ROOT
from tests.support.influx import Influx
from tests.support.servers import CHROMIUM_ARGS, Gunicorn, StaticSite
from tests.support.web import CHROME_UA

EXTRAS = "outbound,downloads,engagement"


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
