"""What a site owner uses: the template helper (with SRI), the snippet, the privacy notice."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import render_template_string

from analytics_bp import settings
from analytics_bp.privacy_notice import notice
from tests.support.build import ROOT
from tests.support.web import CHROME_UA


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def test_template_helper_renders_the_exact_tag(make_app: Any) -> None:
    app = make_app()
    served = app.test_client().get("/analytics/agent.js").data
    with app.test_request_context():
        html = render_template_string(
            "<head>{{ analytics_script() }}</head><footer>{{ analytics_notice() }}</footer>")
        with_stub = render_template_string("{{ analytics_script(stub=True, hash=True, "
                                           "endpoint='https://stats.example.com/a') }}")
    assert html == (
        f'<head><script defer src="/analytics/agent.js" integrity="{sri(served)}" '
        'crossorigin="anonymous"></script></head><footer>This site counts visits without '
        "cookies and stores no IP address; visit records expire. Do Not Track is honoured. "
        '<a href="/analytics/privacy">Details</a></footer>')
    assert with_stub.startswith("<script>window.recordEvent=window.recordEvent||function(){")
    assert with_stub.endswith('crossorigin="anonymous" data-endpoint="https://stats.example.com/a"'
                              ' data-hash></script>')


def test_template_helper_refuses_unknown_options(make_app: Any) -> None:
    app = make_app()
    with app.test_request_context(), pytest.raises(TypeError, match="unknown agent option"):
        render_template_string("{{ analytics_script(onload='alert(1)') }}")


def test_cli_snippet(make_app: Any) -> None:
    app = make_app()
    result = app.test_cli_runner().invoke(args=["analytics", "snippet", "--origin",
                                                "https://stats.example.com"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("<script>window.recordEvent=")
    assert re.fullmatch(r'<script defer src="https://stats.example.com/analytics/agent.js" '
                        r'integrity="sha384-[A-Za-z0-9+/=]+" crossorigin="anonymous"></script>',
                        lines[1])


def test_cli_snippet_prints_the_extras_the_collector_accepts(make_app: Any) -> None:
    app = make_app(ANALYTICS_AGENT_EXTRAS="outbound,engagement")
    extras = app.extensions["analytics"].config
    assert extras.agent_extras == ("outbound", "engagement")
    runner = app.test_cli_runner()
    tag = runner.invoke(args=["analytics", "snippet"]).output.splitlines()[1]
    assert re.fullmatch(r'<script defer src="https://stats.example.com/analytics/agent.extras.js" '
                        r'integrity="sha384-[A-Za-z0-9+/=]+" crossorigin="anonymous" data-outbound '
                        r'data-engagement></script>', tag)
    served = app.test_client().get("/analytics/agent.extras.js").data
    assert sri(served) in tag
    chosen = runner.invoke(args=["analytics", "snippet", "--extras", "downloads", "--allow-local"])
    assert 'agent.extras.js"' in chosen.output and "data-allow-local data-downloads>" in chosen.output
    plain = runner.invoke(args=["analytics", "snippet", "--extras", "none"]).output
    assert 'analytics/agent.js"' in plain and "data-" not in plain.splitlines()[1]
    bad = runner.invoke(args=["analytics", "snippet", "--extras", "sideways"])
    assert bad.exit_code == 2 and "unknown extra sideways" in bad.output


def test_the_first_refusal_of_each_kind_is_logged_once_and_health_counts_all(
        make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    client = app.test_client()
    caplog.set_level(logging.INFO, logger="analytics.collector")
    body = json.dumps({"domain": "www.example.com", "page": "/"})
    for _ in range(3):
        resp = client.post("/analytics/pageview", data=body, content_type="text/plain",
                           headers={"User-Agent": CHROME_UA})
        assert resp.status_code == 400
    client.post("/analytics/pageview", data=b"not json", content_type="text/plain")
    lines = [r.getMessage() for r in caplog.records if r.name == "analytics.collector"]
    assert lines == [
        "refused beacon, the first of its kind: domain not permitted: www.example.com "
        "(ANALYTICS_PERMITTED_DOMAINS is example.com,*.example.org; a subdomain such as www. "
        "needs its own entry or a *. pattern)",
        "refused beacon, the first of its kind: body is not a JSON object: -"]
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "analytics.collector")
    health = client.get("/analytics/health").get_json()
    assert health["rejected"] == {"bad_json": 1, "domain_not_permitted": 3}


def test_start_up_says_what_is_on_and_what_the_environment_holds_in_vain(
        make_app: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Any, influx: Any) -> None:
    from flask import Flask

    from analytics_bp import Analytics

    caplog.set_level(logging.INFO, logger="analytics.startup")
    monkeypatch.setenv("ANALYTICS_DASHBOARD_TOKEN", "env-only-5Nq8Wz2Lx7Vc4Rb9Km1Jt6Hp3Yd0Gf")
    app = Flask("host")
    app.config.update(ANALYTICS_PERMITTED_DOMAINS="example.com",
                      ANALYTICS_STATE_DIR=str(tmp_path / "mounted"), **influx.creds.as_env())
    Analytics(app)
    messages = [r.getMessage() for r in caplog.records if r.name == "analytics.startup"]
    assert messages[1] == ("analytics: dashboard and Stats API off (404): ANALYTICS_DASHBOARD_TOKEN "
                           "is not set in app.config")
    assert messages[2].startswith("analytics: ANALYTICS_DASHBOARD_TOKEN set in the environment but "
                                  "not in app.config, so not used")
    assert app.test_client().get("/analytics/dashboard").status_code == 404


def test_the_demo_page_links_the_dashboard_to_its_own_site(make_app: Any) -> None:
    client = make_app(ANALYTICS_DEMO="1").test_client()
    html = client.get("/", base_url="http://127.0.0.1:8000").get_data(as_text=True)
    assert 'href="/analytics/dashboard#site=127.0.0.1"' in html


def test_notice_reflects_changed_settings(make_app: Any) -> None:
    day = make_app().test_client().get("/analytics/privacy",
                                       headers={"Accept": "application/json"}).get_json()
    month = make_app(ANALYTICS_SALT_PERIOD="month", ANALYTICS_RAW_RETENTION="40d",
                     ANALYTICS_RESPECT_DNT=False, ANALYTICS_GEOIP=True).test_client().get(
        "/analytics/privacy", headers={"Accept": "application/json"}).get_json()
    assert "changes every day" in day["settings"]["ANALYTICS_SALT_PERIOD"]
    assert "changes every calendar month" in month["settings"]["ANALYTICS_SALT_PERIOD"]
    assert "31 days and then deleted" in day["settings"]["ANALYTICS_RAW_RETENTION"]
    assert "40 days and then deleted" in month["settings"]["ANALYTICS_RAW_RETENTION"]
    assert day["settings"]["ANALYTICS_RESPECT_DNT"].endswith("not recorded.")
    assert "does not honour" in month["settings"]["ANALYTICS_RESPECT_DNT"]
    assert "country" in month["collected"]["pageview"]
    assert "country" not in day["collected"]["pageview"]
    html = make_app().test_client().get("/analytics/privacy").get_data(as_text=True)
    assert "<h1>How this site counts visits</h1>" in html and "IP address" in html


def test_every_privacy_setting_is_in_the_notice() -> None:
    cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": "example.com"})
    privacy_settings = {s.name for s in settings.SETTINGS if s.privacy}
    assert privacy_settings <= set(notice(cfg)["settings"])
    assert len(privacy_settings) >= 10


def test_every_setting_is_in_the_config_table() -> None:
    table = (ROOT / "docs" / "config.md").read_text().split("<!-- settings:end -->")[0]
    documented = set(re.findall(r"^\| `(ANALYTICS_[A-Z_]+)` \|", table, flags=re.M))
    assert documented == {s.name for s in settings.SETTINGS}


def test_notice_page_loads_in_chromium(make_app: Any, tmp_path: Any) -> None:
    from playwright.sync_api import sync_playwright

    from tests.support.servers import CHROMIUM_ARGS, Gunicorn

    app = make_app()
    env = {k: str(v) for k, v in app.config.items() if k.startswith(("ANALYTICS_", "INFLUXDB_"))}
    with Gunicorn(env, workers=1, log=tmp_path / "g.log") as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(server.url + "/analytics/privacy")
        assert page.title() == "Privacy: how this site counts visits"
        assert "cookie-free" in page.inner_text("body")
        # what is filtered, and from which data (issue 28)
        assert page.inner_text("h2:has-text('What is not counted') + p") == notice(app.extensions[
            "analytics"].config)["not_counted"]
        assert "isbot" in page.inner_text("body") and "Matomo" in page.inner_text("body")
        page.screenshot(path=str(ROOT / "test-artifacts" / "privacy-notice.png"), full_page=True)
        browser.close()


def test_docs_config_table_is_generated() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "config_table.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_health_details_only_for_this_host_or_the_dashboards_callers(make_app: Any) -> None:
    token = "health-3Fj8Qw2Zr7Lx5Cv9Bn1Mk4Hd6Gs0Pt"
    client = make_app(ANALYTICS_TRUSTED_PROXIES=1, ANALYTICS_DASHBOARD_TOKEN=token).test_client()
    public = client.get("/analytics/health", headers={"X-Forwarded-For": "203.0.113.7"})
    assert (public.status_code, public.get_json()) == (200, {"status": "ok"})
    authorised = client.get("/analytics/health", headers={"X-Forwarded-For": "203.0.113.7",
                                                           "Authorization": f"Bearer {token}"})
    local = client.get("/analytics/health")  # straight to the app, from this host
    for resp in (authorised, local):
        assert {"status", "version", "influxdb", "writer", "rejected"} == set(resp.get_json())


def test_the_notice_and_the_docs_say_the_same_true_thing(make_app: Any) -> None:
    notice = make_app(ANALYTICS_RAW_RETENTION="14d").test_client().get(
        "/analytics/privacy", headers={"Accept": "application/json"}).get_json()
    retention = notice["settings"]["ANALYTICS_RAW_RETENTION"]
    assert "14 days and then deleted" in retention and "count as personal data" in retention
    assert "could not be stored are deleted after at most 14 days" in retention
    docs = (Path(__file__).parents[2] / "docs" / "privacy.md").read_text()
    assert "ANALYTICS_SPOOL_DIR/rejected` | as long as raw points, at most 30 days" in docs
    assert "pseudonymous personal data" in docs and "stores no IP address or personal data" not in docs
