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
from typing import Any

from .conftest import Influx

ROOT = Path(__file__).parent.parent

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


def clean_copy(target: Path) -> None:
    """The files git knows (committed, or new and not ignored): what a fresh clone would hold."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_the_wheel_works_from_a_fresh_venv_without_node(influx: Influx, bucket: str, tmp_path: Path) -> None:
    source, dist, venv, work = (tmp_path / d for d in ("source", "dist", "venv", "work"))
    clean_copy(source)
    run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(dist), str(source)])
    [wheel] = dist.glob("*.whl")
    assert len(list(dist.glob("*.tar.gz"))) == 1
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
    built = ROOT / "agent_js" / "dist"  # what `make agent` builds from agent_js/src
    assert bytes.fromhex(report["agent_bytes"]) == (built / "agent.min.js").read_bytes()
    assert bytes.fromhex(report["debug_bytes"]) == (built / "agent.debug.js").read_bytes()
    assert bytes.fromhex(report["extras_bytes"]) == (built / "agent.extras.min.js").read_bytes()
    stored = influx.query('from(bucket: b) |> range(start: 0) |> filter(fn: (r) => '
                          'r._measurement == "pageview" and r._field == "count")', b=bucket)
    assert [r["page"] for r in stored] == ["/wheel"]

    flask = str(venv / "bin" / "flask")
    assert "0.3.0" in run([flask, "analytics", "--version"], cwd=work, env=env).stdout
    setup = run([flask, "analytics", "setup"], cwd=work, env=env).stdout
    assert f"task {bucket}_daily: created" in setup
    run([flask, "analytics", "export", "grafana", str(tmp_path / "grafana")], cwd=work, env=env)
    run([flask, "analytics", "export", "nginx", str(tmp_path / "nginx")], cwd=work, env=env)
    datasource = (tmp_path / "grafana" / "provisioning" / "datasources" / "analytics.yaml").read_text()
    assert f'url: "{influx.creds.url}"' in datasource and f'defaultBucket: "{bucket}"' in datasource
    assert "${INFLUXDB_V2_TOKEN}" in datasource and influx.creds.token not in datasource
    assert sorted(p.name for p in (tmp_path / "grafana" / "dashboards").glob("*.json")) == [
        "events.json", "traffic.json", "usage.json"]
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
