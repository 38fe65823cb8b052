"""Real Chromium for the agent and the pages, and a collector per test module."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.build import ROOT
from tests.support.influx import Influx, scratch_bucket
from tests.support.servers import CHROMIUM_ARGS, Gunicorn

ARTIFACTS = ROOT / "test-artifacts"


def module_collector(prefix: str, **settings: str) -> Any:
    """A module-scoped `collector` fixture: the collector under a real gunicorn (2 workers),
    writing every 0.2 s to a scratch bucket of its own (`collector.env["ANALYTICS_BUCKET"]`)."""
    @pytest.fixture(scope="module", name="collector")
    def fixture(influx: Influx, tmp_path_factory: Any) -> Iterator[Gunicorn]:
        with scratch_bucket(influx, prefix) as bucket:
            env = {**influx.creds.as_env(), "ANALYTICS_BUCKET": bucket, "ANALYTICS_FLUSH_INTERVAL": "0.2",
                   "ANALYTICS_STATE_DIR": str(tmp_path_factory.mktemp(prefix)), **settings}
            with Gunicorn(env, workers=2) as server:
                yield server
    return fixture


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


class Recorder:
    """Every request the page sends, and the beacons among them (decoded)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.requests: list[tuple[str, str]] = []
        self.beacons: list[tuple[str, dict[str, Any]]] = []
        self.console: list[str] = []
        page.on("request", self._on_request)
        page.on("console", lambda msg: self.console.append(msg.text))

    def _on_request(self, request: Any) -> None:
        self.requests.append((request.method, request.url))
        if request.method == "POST" and "/analytics/" in request.url:
            kind = request.url.rsplit("/", 1)[1]
            self.beacons.append((kind, json.loads(request.post_data)))

    def wait_beacons(self, n: int, timeout: float = 5) -> list[tuple[str, dict[str, Any]]]:
        """Wait (pumping Playwright's events) for n beacons, then a little for any extra one."""
        deadline = time.monotonic() + timeout
        while len(self.beacons) < n and time.monotonic() < deadline:
            self.page.wait_for_timeout(50)
        self.page.wait_for_timeout(400)
        return self.beacons
