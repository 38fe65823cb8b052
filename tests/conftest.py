"""Fixtures: a real influxd for the session, a fresh bucket per test, and app factories.

The session server is the one named by INFLUXDB_V2_URL/ORG/TOKEN when those are set (use an
existing InfluxDB), else a throwaway influxd started from $INFLUXD (the Makefile provides it).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from influxdb_client import InfluxDBClient

from analytics_bp import create_app, rollups
from analytics_bp.dev.localinflux import InfluxCredentials, LocalInflux

from .admin import Admin

ROOT = Path(__file__).parent.parent

CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@dataclass
class Influx:
    creds: InfluxCredentials
    client: InfluxDBClient
    admin: Admin
    server: LocalInflux | None

    def query(self, flux: str, **params: Any) -> list[dict[str, Any]]:
        return self.admin.query(flux, params=params or None)

    def raw_rows(self, bucket: str) -> list[dict[str, Any]]:
        return self.query(
            'from(bucket: b) |> range(start: 0) |> drop(columns: ["_start", "_stop"])', b=bucket
        )


@pytest.fixture(scope="session")
def influx() -> Iterator[Influx]:
    server = None
    if all(os.environ.get(k) for k in ("INFLUXDB_V2_URL", "INFLUXDB_V2_ORG", "INFLUXDB_V2_TOKEN")):
        creds = InfluxCredentials(os.environ["INFLUXDB_V2_URL"], os.environ["INFLUXDB_V2_ORG"],
                                  os.environ["INFLUXDB_V2_TOKEN"])
    else:
        server = LocalInflux()
        server.start()
        creds = server.onboard()
    client = InfluxDBClient(url=creds.url, token=creds.token, org=creds.org, timeout=30_000)
    admin = Admin(creds.url, creds.org, creds.token)
    try:
        yield Influx(creds, client, admin, server)
    finally:
        client.close()
        admin.close()
        if server is not None:
            server.stop()


@contextmanager
def scratch_bucket(influx: Influx, prefix: str = "t") -> Iterator[str]:
    """A fresh raw bucket (and its rollup buckets, if a test creates them), deleted afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    influx.admin.ensure_bucket(name, 0, rollups.raw_shard_group_seconds(0))  # as setup makes it
    try:
        yield name
    finally:
        influx.admin.drop_with_rollups(name)


@pytest.fixture
def bucket(influx: Influx) -> Iterator[str]:
    with scratch_bucket(influx) as name:
        yield name


@pytest.fixture
def make_app(influx: Influx, bucket: str, tmp_path: Path) -> Iterator[Any]:
    """Build standalone apps writing to the test bucket; their sinks are closed afterwards."""
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        config: dict[str, Any] = {
            "ANALYTICS_PERMITTED_DOMAINS": "example.com,*.example.org",
            "ANALYTICS_PERMITTED_EVENTS": "socialclick,signup",
            "ANALYTICS_NOTE_EVENTS": "socialclick",
            "ANALYTICS_BUCKET": bucket,
            "ANALYTICS_STATE_DIR": str(tmp_path / "state"),
            "ANALYTICS_FLUSH_INTERVAL": 0.2,
            "ANALYTICS_HMAC_SECRET": "test-secret",
            **influx.creds.as_env(),
        }
        config.update(overrides)
        app = create_app(**config)
        app.testing = True
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["analytics"].close()


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """A command that must succeed; its output tails in the failure otherwise."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@dataclass
class Built:
    dist: Path
    wheel: Path
    log: str


def clean_copy(target: Path) -> None:
    """The files git knows (committed, or new and not ignored): what a fresh clone would hold."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The sdist and wheel `python -m build` makes from a clean copy of the tree, once."""
    root = tmp_path_factory.mktemp("build")
    source, dist = root / "source", root / "dist"
    clean_copy(source)
    done = run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(dist), str(source)])
    [wheel] = dist.glob("*.whl")
    return Built(dist, wheel, done.stdout + done.stderr)


def flush(app: Flask) -> None:
    """Deliver everything the app's sink holds, waiting for its delivery thread's too, and for
    the writer's golive decision (made in the background when a writer starts)."""
    sink = app.extensions["analytics"].sink()
    assert sink.drain(), "spool not empty after 30 s"
    deadline = time.monotonic() + 10
    while any(t.name == "analytics-golive" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the golive decision took more than 10 s"
        time.sleep(0.02)
    assert sink.drain(), "spool not empty after 30 s"


def random_token() -> str:
    return secrets.token_hex(8)


FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture
def report_figure(request: pytest.FixtureRequest) -> Any:
    """Record a measured figure (one line); the run prints them all at its end."""
    return request.config.stash.setdefault(FIGURES, []).append


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("measured figures")
        for text in lines:
            terminalreporter.write_line(text)
