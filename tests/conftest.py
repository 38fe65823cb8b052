"""Fixtures: a real influxd for the session, a fresh bucket per test, and app factories.

The session server is the one named by INFLUXDB_V2_URL/ORG/TOKEN when those are set (use an
existing InfluxDB), else a throwaway influxd started from $INFLUXD (the Makefile provides it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from influxdb_client import InfluxDBClient

from analytics_bp import create_app
from analytics_bp.dev.admin import Admin
from analytics_bp.dev.localinflux import InfluxCredentials, LocalInflux
from tests.support.browser import browser  # noqa: F401  (real Chromium, one per module)
from tests.support.build import Built, clean_copy, run
from tests.support.datasets import rolled  # noqa: F401  (the rolled-up dataset, one per module)
from tests.support.influx import Influx, scratch_bucket


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


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The sdist and wheel `python -m build` makes from a clean copy of the tree, once."""
    root = tmp_path_factory.mktemp("build")
    source, dist = root / "source", root / "dist"
    clean_copy(source)
    done = run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(dist), str(source)])
    [wheel] = dist.glob("*.whl")
    return Built(dist, wheel, done.stdout + done.stderr)


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
