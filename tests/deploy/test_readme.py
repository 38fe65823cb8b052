"""README's install, mount and deploy sections, followed literally by a newcomer (deploy).

The blocks marked `<!-- readme-test: NAME -->` in README.md are run as they are, in a fresh
virtualenv holding the wheel (the one substitution: `pip install analytics_bp` installs the wheel
built from this tree, since no package index is reachable here), against the real influxd, under
the real gunicorn; a real page with the snippet's tag is opened in Chromium on a real host name,
and the visit is then asked of the Stats API. Nothing is mocked."""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from analytics_bp.dev.localinflux import free_port
from analytics_bp.dev.process import ChildProcess, http_ok
from tests.support.build import ROOT, Built, run
from tests.support.influx import Influx
from tests.support.servers import CHROME_LIKE_UA, StaticSite, chromium_args

README = (ROOT / "README.md").read_text()


def block(name: str) -> str:
    """The fenced block right after `<!-- readme-test: name -->`."""
    match = re.search(rf"<!-- readme-test: {name} -->\s*```\w*\n(.*?)\n\s*```", README, re.S)
    assert match, f"README has no block marked readme-test: {name}"
    return "\n".join(line.strip() if name != "mount" else line for line in match.group(1).splitlines())


def shell_lines(name: str) -> list[str]:
    """A sh block's commands, without comments."""
    return [line.split("  #")[0].strip() for line in block(name).splitlines()
            if line.strip() and not line.strip().startswith("#")]


def sh(command: str, env: dict[str, str], cwd: Path) -> str:
    return run(["bash", "-euo", "pipefail", "-c", command], env=env, cwd=cwd).stdout


def test_a_newcomer_follows_the_readme(influx: Influx, built: Built, tmp_path: Path) -> None:
    venv, work, home = tmp_path / "venv", tmp_path / "site", tmp_path / "home"
    for folder in (work, home):
        folder.mkdir()
    run([sys.executable, "-m", "venv", str(venv)])
    bucket = f"t_readme_{uuid.uuid4().hex[:8]}"
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "FLASK_ANALYTICS_BUCKET": bucket}

    # Install.
    [install] = shell_lines("install")
    assert install == "pip install analytics_bp"
    sh(f"pip install -q {shlex.quote(str(built.wheel))}", env, work)

    # Mount: README's app.py, as it is.
    (work / "app.py").write_text(block("mount") + "\n")

    # Set-up: the exports (with this machine's InfluxDB), setup, tasks, snippet.
    setup = shell_lines("setup")
    exports = [line for line in setup if line.startswith("export ")]
    assert exports[0].startswith("export INFLUXDB_V2_URL=")
    env.update(influx.creds.as_env())
    [token_line] = [line for line in exports if "FLASK_ANALYTICS_DASHBOARD_TOKEN" in line]
    env["FLASK_ANALYTICS_DASHBOARD_TOKEN"] = sh(
        token_line.replace("export FLASK_ANALYTICS_DASHBOARD_TOKEN=", "echo "), env, work).strip()
    commands = [line for line in setup if not line.startswith("export ")]
    assert [c.split()[4] for c in commands] == ["setup", "tasks", "snippet"]
    out = sh(commands[0], env, work)
    assert f"task {bucket}_daily: created" in out
    tasks = sh(commands[1], env, work)
    assert tasks.count("never ran") == 3, tasks  # hourly, daily, monthly: none has run yet
    port = free_port()
    origin = f"http://stats.example.com:{port}"
    snippet = sh(commands[2].replace("https://stats.example.com", origin), env, work)
    assert f'src="{origin}/analytics/agent.js"' in snippet and 'integrity="sha384-' in snippet

    # Deploy: gunicorn with the shipped config, as README writes it.
    [gunicorn_line] = shell_lines("gunicorn")
    assert gunicorn_line == "gunicorn -c python:analytics_bp.gunicorn_conf 'app:app'"
    server = ChildProcess("gunicorn", ["bash", "-c", "exec " + gunicorn_line], tmp_path / "gunicorn.log",
                          env={**env, "ANALYTICS_BIND": f"127.0.0.1:{port}", "ANALYTICS_WORKERS": "1"},
                          cwd=work)
    server.start(http_ok(f"http://127.0.0.1:{port}/analytics/agent.js"), timeout=30)
    try:
        page_html = f"<!doctype html><html><head>{snippet}</head><body>Hello</body></html>"
        with StaticSite({"/": page_html}) as site, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                         args=chromium_args("www.example.com", "stats.example.com"))
            page = browser.new_page(user_agent=CHROME_LIKE_UA)
            with page.expect_response(lambda r: r.url.endswith("/analytics/pageview")) as sent:
                page.goto(f"http://www.example.com:{site.port}/")
            assert sent.value.status == 204
            browser.close()
        answer = query(port, env["FLASK_ANALYTICS_DASHBOARD_TOKEN"], "www.example.com")
        assert answer == [{"dimensions": ["/"], "metrics": [1, 1]}]
    finally:
        server.stop(timeout=20)
        influx.admin.drop_with_rollups(bucket)
    log = (tmp_path / "gunicorn.log").read_text()
    assert "analytics: dashboard on at /analytics/dashboard" in log
    assert "Traceback" not in log
    state = home / ".local" / "state" / "analytics_bp"
    assert state.is_dir() and (state.stat().st_mode & 0o777) == 0o700


def query(port: int, token: str, site: str) -> list[dict[str, Any]]:
    """Pageviews and visitors by page, asked until the visit is in (delivery takes a moment)."""
    body = {"site_id": site, "metrics": ["pageviews", "visitors"], "date_range": "day",
            "dimensions": ["event:page"]}
    deadline = time.monotonic() + 15
    while True:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/analytics/api/v2/query",
                                         data=json.dumps(body).encode(),
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                results: list[dict[str, Any]] = json.loads(resp.read())["results"]
        except urllib.error.HTTPError as err:  # a new site is unknown until its first point is in
            if time.monotonic() > deadline:
                raise AssertionError(f"{err.code}: {err.read()!r}") from None
            results = []
        if results or time.monotonic() > deadline:
            return results
        time.sleep(0.3)
