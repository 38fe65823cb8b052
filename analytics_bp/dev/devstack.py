"""`make run`: the whole local stack with zero configuration.

Starts (or reuses) a local influxd with its data in .run/influxd, onboards it on first use, creates
the buckets and rollup tasks, and serves the collector (with a demo page at /) under gunicorn on
http://127.0.0.1:8000; with ANALYTICS_NGINX=1 also nginx in front on :8080. Every environment
variable overrides its default: set INFLUXDB_V2_URL/ORG/TOKEN to use an existing InfluxDB instead.
Writes the InfluxDB URL, org and token it uses to .run/env, with the dashboard token (the
environment's ANALYTICS_DASHBOARD_TOKEN, else one generated once), and fills the demo site
demo.test with a month of traffic the first time. Ctrl-C or SIGTERM stops everything.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from .. import rollups, settings
from ..influx import InfluxAdmin, InfluxTarget
from ..sink import Sink
from . import demo_traffic
from .demo_traffic import DEMO_SITE
from .localinflux import InfluxCredentials, LocalInflux, free_port
from .process import ChildProcess, http_ok

RUN = Path(".run")
STATIC = Path(__file__).resolve().parent.parent / "static"  # the package's agent files
DEFAULTS = {
    "ANALYTICS_PERMITTED_DOMAINS": f"localhost,127.0.0.1,{DEMO_SITE}",
    "ANALYTICS_PERMITTED_EVENTS": "signup,socialclick",
    "ANALYTICS_NOTE_EVENTS": "socialclick",
    "ANALYTICS_AGENT_EXTRAS": "outbound,downloads,engagement",
    "ANALYTICS_DEMO": "1",
    "ANALYTICS_STATE_DIR": str(RUN.resolve() / "state"),
    "ANALYTICS_BIND": "127.0.0.1:8000",
}


def read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def start_influx() -> tuple[InfluxCredentials, LocalInflux | None]:
    given = settings.influx_settings({})
    if given is not None:
        creds = InfluxCredentials(given["INFLUXDB_V2_URL"], given["INFLUXDB_V2_ORG"],
                                  given["INFLUXDB_V2_TOKEN"])
        print(f"using the InfluxDB at {creds.url} (from INFLUXDB_V2_*)")
        return creds, None
    saved = read_env_file(RUN / "env")
    server = LocalInflux(data_dir=str(RUN.resolve() / "influxd"),
                         port=8086 if port_free(8086) else free_port())
    server.start()
    if server.needs_setup():
        creds = server.onboard()
    else:
        creds = InfluxCredentials(server.url, saved.get("INFLUXDB_V2_ORG", "analytics"),
                                  saved.get("INFLUXDB_V2_TOKEN", ""))
        if not creds.token:
            server.stop()
            raise SystemExit(".run/influxd exists but .run/env has no token: delete .run/ and retry")
    print(f"started influxd {server.url} (data in {server.data_dir}, log {server.log_path})")
    return creds, server


def dashboard_token(saved: dict[str, str]) -> str:
    """The environment's ANALYTICS_DASHBOARD_TOKEN, else the one saved in .run/env, else a new one."""
    return (os.environ.get("ANALYTICS_DASHBOARD_TOKEN") or saved.get("ANALYTICS_DASHBOARD_TOKEN")
            or secrets.token_urlsafe(32))


def write_env_file(creds: InfluxCredentials, token: str) -> None:
    RUN.mkdir(exist_ok=True)
    values = {**creds.as_env(), "ANALYTICS_DASHBOARD_TOKEN": token}
    (RUN / "env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    os.chmod(RUN / "env", 0o600)


def fill_demo_once(env: dict[str, str], creds: InfluxCredentials) -> None:
    """Four weeks of demo traffic for demo.test, rolled up by the shipped tasks; once per bucket."""
    cfg = settings.load(env)
    marker = Path(cfg.state_dir) / f"demo-filled-{cfg.bucket}"
    if marker.exists() or settings.server_setting("ANALYTICS_DEMO_DATA", env) == "0":
        return
    print(f"filling the demo site {DEMO_SITE} with four weeks of traffic (once):")
    target = InfluxTarget(creds.url, creds.org, creds.token, cfg.bucket)
    sink = Sink(target, str(Path(cfg.state_dir) / "demo-spool"), flush_interval=60)
    admin = InfluxAdmin(creds.url, creds.org, creds.token)

    def write(lines: list[str]) -> None:
        for text in lines:
            sink.write(text)
        if not sink.drain(timeout=120):
            raise SystemExit("demo data could not be delivered to InfluxDB")

    def run_tasks(runs: list[tuple[str, datetime]]) -> None:
        queued = [(f"{cfg.bucket}_{stem}", at.strftime("%Y-%m-%dT%H:%M:%SZ")) for stem, at in runs]
        results = rollups.rerun(admin, cfg.bucket, queued)
        failed = [r for r in results if r["status"] != "success"]
        if failed:
            raise SystemExit(f"{len(failed)} rollup runs failed on the demo data: {failed[0]['logs'][-1:]}")

    try:
        demo_traffic.fill(cfg, write, run_tasks, progress=lambda text: print("  " + text, flush=True))
    finally:
        sink.close()
        admin.close()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(datetime.now(UTC).isoformat() + "\n")


def setup(env: dict[str, str], creds: InfluxCredentials) -> None:
    cfg = settings.load(env)
    admin = InfluxAdmin(creds.url, creds.org, creds.token)
    try:
        for what, outcome in rollups.setup(cfg, admin).items():
            print(f"  {what}: {outcome}")
    finally:
        admin.close()


def start_gunicorn(env: dict[str, str]) -> ChildProcess:
    gunicorn = ChildProcess("gunicorn", [str(Path(sys.executable).parent / "gunicorn"), "-c",
                                         "python:analytics_bp.gunicorn_conf",
                                         "analytics_bp:create_app()"],
                            None, env={**os.environ, **env})
    prefix = settings.load(env).url_prefix
    return gunicorn.start(http_ok(f"http://{env['ANALYTICS_BIND']}{prefix}/agent.js"), timeout=30)


def start_nginx(gunicorn_bind: str) -> ChildProcess | None:
    if settings.server_setting("ANALYTICS_NGINX") != "1":
        return None
    from .nginxconf import render_example

    prefix = RUN.resolve() / "nginx"
    conf = RUN.resolve() / "nginx.conf"
    conf.write_text(render_example(listen="127.0.0.1:8080", upstream=gunicorn_bind,
                                   prefix=str(prefix),
                                   static_root=str(STATIC)))
    prefix.mkdir(exist_ok=True)
    nginx = ChildProcess("nginx", ["nginx", "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"],
                         prefix / "error.log", stop_signal=signal.SIGQUIT)
    nginx.start(http_ok("http://127.0.0.1:8080/analytics/agent.js"), timeout=20)
    print("started nginx on http://127.0.0.1:8080 (in front of gunicorn)")
    return nginx


def main() -> None:
    # Progress lines reach a log file as they happen; Ctrl-C or SIGTERM at any moment, even while
    # starting, stops what has started (the handler is set before anything is).
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    env = {**DEFAULTS, **{k: v for k, v in os.environ.items() if k.startswith("ANALYTICS_")}}
    settings.startup_check(env, "make run", needs_influx=False)  # InfluxDB is found below
    RUN.mkdir(exist_ok=True)
    creds, influx = start_influx()
    token = dashboard_token(read_env_file(RUN / "env"))
    write_env_file(creds, token)
    env.update(creds.as_env())
    env["ANALYTICS_DASHBOARD_TOKEN"] = token
    print("setting up buckets and rollup tasks:")
    setup(env, creds)
    fill_demo_once(env, creds)
    procs = [start_gunicorn(env)]
    nginx = start_nginx(env["ANALYTICS_BIND"])
    if nginx:
        procs.append(nginx)
    prefix = settings.load(env).url_prefix
    print(f"\ncollector + demo page: http://{env['ANALYTICS_BIND']}/  (Ctrl-C stops everything)")
    host = env["ANALYTICS_BIND"].rsplit(":", 1)[0]
    print(f"dashboard: http://{env['ANALYTICS_BIND']}{prefix}/dashboard#site={DEMO_SITE}  (the demo "
          f"month; your visits to the demo page are under #site={host}; token: "
          "ANALYTICS_DASHBOARD_TOKEN in .run/env)")
    print(f"InfluxDB: {creds.url}  org {creds.org}  (token in .run/env)\n")
    while not stopping and all(p.running() for p in procs):
        time.sleep(0.2)
    for proc in reversed(procs):
        proc.stop(timeout=30)
    if influx is not None:
        influx.stop()
    print("stopped")


if __name__ == "__main__":
    main()
