"""The built-in dashboard in real Chromium, served by gunicorn, over demo traffic rolled up by the
shipped tasks in a real influxd: login, numbers equal to the Stats API's, filtering, no other host."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from analytics_bp import rollups, settings
from analytics_bp.dev import demo_traffic
from analytics_bp.influx import InfluxTarget
from analytics_bp.sink import Sink
from tests.support.browser import ARTIFACTS
from tests.support.influx import Influx
from tests.support.servers import Gunicorn

TOKEN = "dashboard-Qm7vK2xR9pLw4ZtN8cYhB3sJ6dFa"  # random: weak tokens are refused
SITE = demo_traffic.DEMO_SITE
FIGURES = ["visitors", "visits", "pageviews", "bounce_rate", "views_per_visit", "median_load_time"]
ENGAGED = ["visit_duration", "time_on_page"]


@pytest.fixture(scope="module")
def stack(influx: Influx, tmp_path_factory: Any) -> Iterator[tuple[Gunicorn, str]]:
    """Demo traffic for a week, rolled up by the shipped tasks, and the collector serving it."""
    bucket = f"t_dash_{uuid.uuid4().hex[:8]}"
    state = tmp_path_factory.mktemp("dash-state")
    env = {**influx.creds.as_env(), "ANALYTICS_BUCKET": bucket, "ANALYTICS_STATE_DIR": str(state),
           "ANALYTICS_PERMITTED_DOMAINS": f"{SITE},127.0.0.1", "ANALYTICS_DASHBOARD_TOKEN": TOKEN,
           "ANALYTICS_PERMITTED_EVENTS": "signup,socialclick", "ANALYTICS_NOTE_EVENTS": "socialclick",
           "ANALYTICS_AGENT_EXTRAS": "outbound,downloads,engagement"}
    cfg = settings.load(env)
    rollups.setup(cfg, influx.admin)
    sink = Sink(InfluxTarget(influx.creds.url, influx.creds.org, influx.creds.token, bucket),
                str(state / "demo-spool"), flush_interval=60)

    def write(lines: list[str]) -> None:
        for text in lines:
            sink.write(text)
        assert sink.drain(timeout=60)

    def run_tasks(runs: list[tuple[str, datetime]]) -> None:
        results = rollups.rerun(influx.admin, bucket, [(f"{bucket}_{stem}", at.strftime("%Y-%m-%dT%H:%M:%SZ"))
                                                        for stem, at in runs])
        assert {r["status"] for r in results} == {"success"}, results[:1]

    demo_traffic.fill(cfg, write, run_tasks, days=7)
    ARTIFACTS.mkdir(exist_ok=True)
    sink.close()
    with Gunicorn(env, workers=2) as server:
        yield server, bucket
    influx.admin.drop_with_rollups(bucket)


def api(server: Gunicorn, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(server.url + "/analytics/api/v2/query", data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as err:
        raise AssertionError(f"{body} -> {err.code} {err.read().decode()}") from None


def filtered_figures(server: Gunicorn, filters: list[Any]) -> list[Any]:
    """The top figures under a filter as the dashboard asks them: the median load apart, a dash
    (None) when only raw points could answer it and the period starts before their retention
    ("30d" is the 30 days before today; raw points are kept 30 days, so its first day is gone)."""
    body = {"site_id": SITE, "date_range": "30d", "filters": filters}
    values = api(server, {**body, "metrics": FIGURES[:-1]})["results"][0]["metrics"]
    try:
        load = api(server, {**body, "metrics": FIGURES[-1:]})["results"][0]["metrics"][0]
    except AssertionError as err:
        assert "needs raw data" in str(err)
        load = None
    return [*values, load]


def figures(page: Page) -> dict[str, float | None]:
    """The exact values behind the figures shown (data-value), as numbers."""
    out: dict[str, float | None] = {}
    for name in FIGURES:
        text = page.get_attribute(f'.figure[data-metric="{name}"]', "data-value") or ""
        out[name] = float(text) if text else None
    return out


def as_numbers(values: list[Any]) -> dict[str, float | None]:
    return {name: None if v is None else float(v) for name, v in zip(FIGURES, values, strict=True)}


def listed(rows: Locator) -> list[tuple[str | None, int]]:
    """The (value, count) of each row a panel shows, in order."""
    return [(rows.nth(i).get_attribute("data-value"), int(rows.nth(i).get_attribute("data-count") or 0))
            for i in range(rows.count())]


def assert_tab(page: Page, server: Gunicorn, panel: str, tab: str, dimension: str,
               metric: str) -> dict[str, Any]:
    """Open a panel's tab: its rows are the Stats API's top ten, in order (at least two)."""
    page.click(f'[data-panel="{panel}"] button[role=tab]:has-text("{tab}")')
    answer = api(server, {"site_id": SITE, "metrics": [metric], "date_range": "30d",
                          "dimensions": [dimension], "pagination": {"limit": 10}})
    rows = page.locator(f'[data-panel="{panel}"] .rows[data-dimension="{dimension}"] button.row')
    expect(rows).to_have_count(len(answer["results"]))
    assert len(answer["results"]) >= 2
    assert listed(rows) == [(r["dimensions"][0], r["metrics"][0]) for r in answer["results"]]
    return answer


def sign_in(page: Page, server: Gunicorn) -> None:
    page.goto(server.url + "/analytics/dashboard")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector('.figure[data-metric="visitors"]')


def test_dashboard_in_chromium(browser: Browser, stack: tuple[Gunicorn, str]) -> None:
    server, _ = stack
    host = urlsplit(server.url).netloc
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))

    # Before login: a form, and nothing about any site.
    page.goto(server.url + "/analytics/dashboard")
    assert SITE not in page.content()
    assert not [u for u in requests if "/api/" in u]
    page.fill("#token", "not-the-token-" + "y" * 30)
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_have_text("That token is not right.")
    page.screenshot(path=str(ARTIFACTS / "dashboard-login.png"))

    sign_in(page, server)
    expect(page.locator("#site")).to_have_value(SITE)
    expected = api(server, {"site_id": SITE, "metrics": FIGURES, "date_range": "30d"})
    expect(page.locator('.figure[data-metric="pageviews"]')).to_have_attribute(
        "data-value", json.dumps(expected["results"][0]["metrics"][2]))
    assert figures(page) == as_numbers(expected["results"][0]["metrics"])
    assert expected["results"][0]["metrics"][2] > 500  # a week of demo traffic is on the page
    pages = api(server, {"site_id": SITE, "metrics": ["pageviews"], "date_range": "30d",
                         "dimensions": ["event:page"], "pagination": {"limit": 10}})
    top = page.locator('[data-panel="Top pages"] button.row')
    expect(top).to_have_count(len(pages["results"]))
    shown = [(top.nth(i).get_attribute("data-value"), int(top.nth(i).get_attribute("data-count") or 0))
             for i in range(top.count())]
    assert shown == [(r["dimensions"][0], r["metrics"][0]) for r in pages["results"]]
    # the agent's extras: engaged time on the cards and beside each page, and the links panel
    engaged = api(server, {"site_id": SITE, "metrics": ENGAGED, "date_range": "30d"})
    for name, value in zip(ENGAGED, engaged["results"][0]["metrics"], strict=True):
        assert value and value > 0
        card = page.locator(f'.figure[data-metric="{name}"]')
        expect(card).to_have_attribute("data-value", re.compile(r"\d"))
        assert float(card.get_attribute("data-value") or "nan") == value
    times = api(server, {"site_id": SITE, "metrics": ["pageviews", "time_on_page"], "date_range": "30d",
                         "dimensions": ["event:page"], "pagination": {"limit": 10}})
    cells = page.locator('[data-panel="Top pages"] button.row .num2')
    assert [float(cells.nth(i).get_attribute("data-value") or "nan") for i in range(cells.count())] == [
        r["metrics"][1] for r in times["results"]]
    for tab, dimension in (("Outbound links", "event:props:destination"), ("Downloads", "event:props:file")):
        assert_tab(page, server, "Links", tab, dimension, "events")
    page.click('[data-panel="Links"] button[role=tab]:has-text("Outbound links")')
    points = json.loads(page.get_attribute("#chart", "data-points") or "[]")
    by_day = api(server, {"site_id": SITE, "metrics": ["visitors", "pageviews"], "date_range": "30d",
                          "dimensions": ["time:day"]})
    assert {p[0]: [p[1], p[2]] for p in points if p[2]} == {
        r["dimensions"][0]: r["metrics"] for r in by_day["results"]}
    # Entry and exit pages: whole visits, beside the pages; a click filters by the visit's page
    for tab, dimension in (("Exit pages", "visit:exit_page"), ("Entry pages", "visit:entry_page")):
        entries = assert_tab(page, server, "Top pages", tab, dimension, "visitors")
    page.screenshot(path=str(ARTIFACTS / "dashboard-entry-pages.png"), full_page=True)
    entry = str(entries["results"][0]["dimensions"][0])
    entries_shown = '[data-panel="Top pages"] .rows[data-dimension="visit:entry_page"]'
    page.click(f'{entries_shown} button.row[data-value="{entry}"]')
    expect(page.locator(".chip")).to_have_text(f"entry page is {entry} \u00d7")
    landed = filtered_figures(server, [["is", "visit:entry_page", [entry]]])
    expect(page.locator('.figure[data-metric="pageviews"]')).to_have_attribute(
        "data-value", json.dumps(landed[2]))
    assert figures(page) == as_numbers(landed)
    # a visit filter reaches the Events panel too: the events of those visits
    events_shown = page.locator('[data-panel="Events"] .rows[data-dimension="event:name"] button.row')
    visit_events = api(server, {"site_id": SITE, "metrics": ["events"], "date_range": "30d",
                                "dimensions": ["event:name"], "pagination": {"limit": 10},
                                "filters": [["is", "visit:entry_page", [entry]]]})
    everything = api(server, {"site_id": SITE, "metrics": ["events"], "date_range": "30d",
                              "dimensions": ["event:name"], "pagination": {"limit": 10}})
    assert visit_events["results"] and visit_events["results"] != everything["results"]
    expect(events_shown).to_have_count(len(visit_events["results"]))
    expect(events_shown.first).to_have_attribute("data-count", str(visit_events["results"][0]["metrics"][0]))
    page.click(".chip")
    expect(page.locator('.figure[data-metric="pageviews"]')).to_have_attribute(
        "data-value", json.dumps(expected["results"][0]["metrics"][2]))
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "dashboard-desktop.png"), full_page=True)

    # A click filters the whole page by the row.
    page.click('[data-panel="Top pages"] button.row[data-value="/pricing"]')
    expect(page.locator(".chip")).to_have_text("page is /pricing \u00d7")
    filtered = filtered_figures(server, [["is", "event:page", ["/pricing"]]])
    expect(page.locator('.figure[data-metric="pageviews"]')).to_have_attribute(
        "data-value", json.dumps(filtered[2]))
    assert figures(page) == as_numbers(filtered)
    expect(page.locator('[data-panel="Top pages"] button.row')).to_have_count(1)
    page.click(".chip")  # removing the filter brings the whole site back
    expect(page.locator('.figure[data-metric="pageviews"]')).to_have_attribute(
        "data-value", json.dumps(expected["results"][0]["metrics"][2]))

    # The keyboard alone can filter: focus a country row and press Enter.
    country = page.locator('[data-panel="Countries"] button.row').first
    value = country.get_attribute("data-value")
    country.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".chip")).to_contain_text("country is ")
    assert value is not None and value in (page.url + page.locator(".chip").inner_text())

    assert errors == []
    assert {urlsplit(u).netloc for u in requests if not u.startswith("data:")} == {host}
    context.close()


def test_a_visit_filter_over_the_year_answers_from_the_rollups(browser: Browser, stack: tuple[Gunicorn, str],
                                                                 tmp_path: Any) -> None:
    """Raw points kept for two days only: under a country filter over the year to date, the figures and
    the chart come from the daily visit tables (whole visits by their first pageview's country);
    the median load, which no rollup keeps per country, reads a dash with the reason; breakdowns
    that no rollup keeps under a filter show the days raw points still cover and say so; nothing
    fails."""
    server, _ = stack
    env = {k: v for k, v in server.env.items() if k.startswith(("ANALYTICS_", "INFLUXDB_"))}
    env.pop("ANALYTICS_BIND")
    env.update(ANALYTICS_RAW_RETENTION="2d", ANALYTICS_STATE_DIR=str(tmp_path))
    with Gunicorn(env, workers=1) as short:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        sign_in(page, short)
        page.select_option("#period", "year")
        country = page.locator('[data-panel="Countries"] button.row').first
        value = country.get_attribute("data-value")
        country.click()
        expect(page.locator(".chip")).to_contain_text("country is ")
        shown = FIGURES[:-1]
        body = {"site_id": SITE, "date_range": "year", "filters": [["is", "visit:country", [value]]]}
        want = api(short, {**body, "metrics": shown, "include": {"answered_from": True}})
        assert want["meta"]["answered_from"]["rollups"]
        expect(page.locator('.figure[data-metric="visits"]')).to_have_attribute(
            "data-value", json.dumps(want["results"][0]["metrics"][1]))
        assert figures(page) == as_numbers([*want["results"][0]["metrics"], None])
        load = page.locator('.figure[data-metric="median_load_time"]')
        expect(load).to_have_attribute("data-value", "")
        expect(load).to_have_attribute("title", re.compile("needs raw data"))
        expect(load.locator("strong")).to_have_text("\u2013")
        by_month = api(short, {**body, "metrics": ["visitors", "pageviews"], "dimensions": ["time:month"],
                               "include": {"time_labels": True, "answered_from": True}})
        assert by_month["meta"]["answered_from"]["rollups"] and by_month["results"]
        months = {r["dimensions"][0]: r["metrics"] for r in by_month["results"]}
        points = [[m, *months.get(m, [0, 0])] for m in by_month["meta"]["time_labels"]]
        expect(page.locator("#chart")).to_have_attribute("data-points",
                                                         json.dumps(points, separators=(",", ":")))
        assert page.locator("#figures .error").count() == 0 and page.locator("#chart .error").count() == 0
        # a breakdown no rollup keeps under a filter: the days raw points still cover, said so
        request = urllib.request.Request(short.url + "/analytics/api/v1/sites",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            raw_days = json.loads(resp.read())["raw_days"]
        # the raw days inside the year (to date): the year's days from today on have no data yet
        first, last = want["query"]["date_range"]
        assert raw_days[1] < last[:10] and raw_days[0] > first
        recent = api(short, {**body, "date_range": raw_days, "metrics": ["pageviews"],
                             "dimensions": ["event:page"], "pagination": {"limit": 10}})
        pages = page.locator('[data-panel="Top pages"] .rows')
        expect(pages.locator("p.since")).to_have_attribute("data-since", raw_days[0])
        expect(pages.locator("button.row")).to_have_count(len(recent["results"]))
        assert recent["results"]
        assert listed(pages.locator("button.row")) == [(r["dimensions"][0], r["metrics"][0])
                                                        for r in recent["results"]]
        expect(page.locator("#panels p.muted", has_text="Loading")).to_have_count(0, timeout=30_000)
        assert page.locator("#panels .error").all_inner_texts() == []
        # countries by country: the per-pageview rollup keeps that one key, over all 12 months
        expect(page.locator('[data-panel="Countries"] p.since')).to_have_count(0)
        expect(page.locator('[data-panel="Countries"] button.row')).to_have_count(1)
        page.screenshot(path=str(ARTIFACTS / "dashboard-country-year.png"), full_page=True)
        assert errors == []
        page.close()


CUT_OFF = """() => [...document.querySelectorAll('.row .num, .row .num2, .figure strong')]
  .filter((el) => el.offsetParent !== null)
  .filter((el) => el.scrollWidth > el.clientWidth + 1
          || el.getBoundingClientRect().right > el.closest('.card, .figure').getBoundingClientRect().right)
  .map((el) => el.textContent)"""


@pytest.mark.parametrize("width", [360, 390])
def test_dashboard_on_a_phone(browser: Browser, stack: tuple[Gunicorn, str], width: int) -> None:
    server, _ = stack
    context = browser.new_context(viewport={"width": width, "height": 844}, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    sign_in(page, server)
    expect(page.locator('[data-panel="Top pages"] button.row').first).to_be_visible()
    page.wait_for_timeout(500)
    # A phone's browser widens its layout viewport to fit wide content, so compare with the
    # device's own width, not with innerWidth.
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
    assert page.evaluate(CUT_OFF) == []  # every number shown whole, inside its card
    page.screenshot(path=str(ARTIFACTS / f"dashboard-phone-{width}.png"), full_page=True)
    context.close()


def test_sign_out_ends_the_session(browser: Browser, stack: tuple[Gunicorn, str]) -> None:
    server, _ = stack
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, server)
    cookie = next(c for c in context.cookies() if c["name"] == "analytics_dashboard")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/analytics"
    page.click("text=Sign out")
    expect(page.locator("#token")).to_be_visible()
    status = page.evaluate("fetch('/analytics/api/v1/sites').then(r => r.status)")
    assert status == 401
    context.close()


def test_a_wrong_token_says_so_in_red(browser: Browser, stack: tuple[Gunicorn, str]) -> None:
    server, _ = stack
    for width, name in ((1280, "desktop"), (390, "phone")):
        context = browser.new_context(viewport={"width": width, "height": 800})
        page = context.new_page()
        page.goto(server.url + "/analytics/dashboard")
        page.fill("#token", "not-the-token-" + "7Hq2Lm5Xv9Rb3Nc7Wd1Z")
        page.click("button[type=submit]")
        error = page.locator(".login-card p.error")
        expect(error).to_have_text("That token is not right.")
        assert error.evaluate("e => getComputedStyle(e).color") == "rgb(220, 38, 38)"  # --bad
        page.screenshot(path=str(ARTIFACTS / f"login-failed-{name}.png"))
        context.close()


def test_another_site_can_neither_sign_out_nor_sign_in(browser: Browser,
                                                        stack: tuple[Gunicorn, str]) -> None:
    """A page on another site posts the dashboard's own forms (the browser adds Sec-Fetch-Site:
    cross-site and the other site's Origin): both are refused, and the user stays signed in."""
    from tests.support.servers import StaticSite

    server, _ = stack
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, server)
    forms = {path: f"""<!doctype html><form method="post" action="{server.url}/analytics/dashboard/{path}">
        <input name="token" value="{TOKEN}"></form><script>document.forms[0].submit()</script>"""
             for path in ("logout", "login")}
    with StaticSite({f"/{path}": html for path, html in forms.items()}) as evil:
        for path in forms:
            attack = context.new_page()
            with attack.expect_response(lambda r, p=path: r.url.endswith(f"/dashboard/{p}")) as answer:
                attack.goto(f"http://site.test:{evil.port}/{path}")
            assert answer.value.status == 403, path
            attack.close()
    status = page.evaluate("fetch('/analytics/api/v1/sites').then(r => r.status)")
    assert status == 200  # still signed in
    context.close()
