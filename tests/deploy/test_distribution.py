"""`pip install` gives a working collector (issue 19): a wheel built from a clean copy of the tree,
installed into a fresh virtualenv with no node or npm anywhere, checked from the installed package
(not this checkout) against the real influxd."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.build import Built, run
from tests.support.influx import Influx

ROOT = Path(__file__).parents[2]

CHECK = r"""
import json, os, sys
import analytics_bp
from analytics_bp import create_app
assert analytics_bp.__file__.startswith(sys.prefix), analytics_bp.__file__  # the installed copy
app = create_app()
client = app.test_client()
agent = client.get("/analytics/agent.js")
debug = client.get("/analytics/agent.debug.js")
extras = client.get("/analytics/agent.extras.js")
beacon = client.post("/analytics/pageview", data=json.dumps({"domain": "example.com", "page": "/wheel"}),
                     headers={"Content-Type": "text/plain", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) "
                              "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"})
assert app.extensions["analytics"].sink().drain()
app.extensions["analytics"].close()
print(json.dumps({"agent": agent.status_code, "agent_bytes": agent.data.hex(),
                  "debug_bytes": debug.data.hex(), "extras_bytes": extras.data.hex(),
                  "beacon": beacon.status_code,
                  "file": analytics_bp.__file__, "version": analytics_bp.__version__}))
"""


def test_the_build_is_clean(built: Built) -> None:
    """`python -m build` makes one sdist and one wheel and has nothing to warn about (every data
    folder of the package is found: no "Package would be ignored")."""
    assert len(list(built.dist.glob("*.tar.gz"))) == 1
    assert "would be ignored" not in built.log
    warnings = [line for line in built.log.splitlines() if "warning" in line.lower()
                and "byte-compiling is disabled" not in line]  # setuptools' note on PYTHONDONTWRITEBYTECODE
    assert warnings == []


def test_the_wheel_works_from_a_fresh_venv_without_node(influx: Influx, bucket: str, tmp_path: Path,
                                                        built: Built) -> None:
    venv, work = tmp_path / "venv", tmp_path / "work"
    wheel = built.wheel
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)])
    work.mkdir()
    env = {"PATH": str(venv / "bin"), "HOME": str(tmp_path), **influx.creds.as_env(),
           "ANALYTICS_PERMITTED_DOMAINS": "example.com", "ANALYTICS_BUCKET": bucket,
           "ANALYTICS_STATE_DIR": str(tmp_path / "state"), "FLASK_APP": "analytics_bp:create_app()"}
    assert shutil.which("node", path=env["PATH"]) is None and shutil.which("npm", path=env["PATH"]) is None
    python = str(venv / "bin" / "python")
    report = json.loads(run([python, "-c", CHECK], cwd=work, env=env).stdout.splitlines()[-1])
    assert report["file"].startswith(str(venv))
    assert report["version"] == "0.3.0"
    assert (report["agent"], report["beacon"]) == (200, 204)
    fresh = ROOT / "agent_js" / "dist"  # what `make agent` builds from agent_js/src
    assert bytes.fromhex(report["agent_bytes"]) == (fresh / "agent.min.js").read_bytes()
    assert bytes.fromhex(report["debug_bytes"]) == (fresh / "agent.debug.js").read_bytes()
    assert bytes.fromhex(report["extras_bytes"]) == (fresh / "agent.extras.min.js").read_bytes()
    stored = influx.query('from(bucket: b) |> range(start: 0) |> filter(fn: (r) => '
                          'r._measurement == "pageview" and r._field == "page")', b=bucket)
    assert [r["_value"] for r in stored] == ["/wheel"]

    flask = str(venv / "bin" / "flask")
    assert "0.3.0" in run([flask, "analytics", "--version"], cwd=work, env=env).stdout
    setup = run([flask, "analytics", "setup"], cwd=work, env=env).stdout
    assert f"task {bucket}_daily: created" in setup
    run([flask, "analytics", "export", "grafana", str(tmp_path / "grafana")], cwd=work, env=env)
    run([flask, "analytics", "export", "nginx", str(tmp_path / "nginx")], cwd=work, env=env)
    datasource = (tmp_path / "grafana" / "provisioning" / "datasources" / "analytics.yaml").read_text()
    assert f'url: "{influx.creds.url}"' in datasource and f'defaultBucket: "{bucket}"' in datasource
    assert "${INFLUXDB_V2_TOKEN}" in datasource and influx.creds.token not in datasource
    assert "expands" not in datasource and "# Written by `flask analytics export grafana`" in datasource
    for folder in ("dashboards", "import"):
        assert sorted(p.name for p in (tmp_path / "grafana" / folder).glob("*.json")) == [
            "events.json", "traffic.json", "usage.json"]
    # nothing of the exporting machine: no path of it, in any file
    for path in (tmp_path / "grafana").rglob("*.*"):
        assert str(tmp_path) not in path.read_text() and str(work) not in path.read_text(), path
    dropin = (tmp_path / "nginx" / "analytics.conf").read_text()
    assert f"alias {tmp_path / 'nginx' / 'static' / 'agent.min.js'};" in dropin
    assert (tmp_path / "nginx" / "static" / "agent.min.js").read_bytes() == (
        ROOT / "analytics_bp" / "static" / "agent.min.js").read_bytes()
    assert (tmp_path / "nginx" / "example.conf").exists()


def test_the_packaged_copies_equal_a_fresh_build() -> None:
    """The agent and dashboard `make agent` just built, and nginx/ and grafana/, are what the
    package ships byte for byte (scripts/package_assets.py; `make assets` refreshes them)."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "package_assets.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert os.path.exists(ROOT / "analytics_bp" / "static" / "dashboard.js")


def test_analytics_run_works_from_the_wheel(influx: Influx, bucket: str, tmp_path: Path,
                                            built: Built) -> None:
    """`analytics-run` (the local stack, as `make run` starts it) from an installed wheel: its
    gunicorn config and static files come from the package, not from a checkout."""
    from analytics_bp.dev.localinflux import free_port
    from analytics_bp.dev.process import ChildProcess, http_ok

    venv, work = tmp_path / "venv", tmp_path / "work"
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "-q", str(built.wheel)])
    work.mkdir()
    port = free_port()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), **influx.creds.as_env(),
           "ANALYTICS_BUCKET": bucket, "ANALYTICS_BIND": f"127.0.0.1:{port}",
           "ANALYTICS_DEMO_DATA": "0", "ANALYTICS_WORKERS": "1"}
    stack = ChildProcess("analytics-run", [str(venv / "bin" / "analytics-run")], tmp_path / "run.log",
                         env=env, cwd=work)
    stack.start(http_ok(f"http://127.0.0.1:{port}/"), timeout=60)
    try:
        for path in ("/analytics/agent.js", "/analytics/agent.extras.js", "/analytics/dashboard"):
            assert http_ok(f"http://127.0.0.1:{port}{path}")(), path
    finally:
        stack.stop(timeout=30)
    log = (tmp_path / "run.log").read_text()
    assert "Traceback" not in log and "stopped" in log
    assert (work / ".run" / "state").is_dir()

