"""A throwaway, real influxd for tests and `make run`.

Why a module rather than a shell script: both the pytest fixtures and the local stack need to start
a fresh server, onboard it, hand out its URL/org/token and be certain it dies with its parent, even
when the parent is interrupted.  Only the standard library is used, so this module can run before
the package's dependencies are importable, and it never imports `influxdb_client` (the sink owns it).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .process import ChildProcess

ORG = "analytics"
USERNAME = "analytics"
BOOTSTRAP_BUCKET = "bootstrap"


@dataclass(frozen=True)
class InfluxCredentials:
    """What a client needs, under the names influxdb-client reads from the environment."""

    url: str
    org: str
    token: str

    def as_env(self) -> dict[str, str]:
        return {
            "INFLUXDB_V2_URL": self.url,
            "INFLUXDB_V2_ORG": self.org,
            "INFLUXDB_V2_TOKEN": self.token,
        }


def find_influxd() -> str:
    """The influxd to run: $INFLUXD (the Makefile sets it from scripts/influxd.sh), PATH, or the
    cache scripts/influxd.sh builds into."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "analytics-bp"
    cached = cache / f"influxd-{os.environ.get('INFLUXD_VERSION', 'v2.9.1')}" / "influxd"
    path = os.environ.get("INFLUXD") or shutil.which("influxd")
    path = path or (str(cached) if cached.exists() else None)
    if not path:
        raise RuntimeError(
            "no influxd found: run `scripts/influxd.sh` (make does) and export INFLUXD=<its output>"
        )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(
    method: str, url: str, body: object | None = None, token: str | None = None, timeout: float = 5
) -> tuple[int, object]:
    """Small JSON-over-HTTP helper; returns (status, decoded body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw) if raw else None
        except ValueError:
            return err.code, raw.decode(errors="replace")


class LocalInflux:
    """Start, onboard and stop one influxd on 127.0.0.1 with its own data directory."""

    def __init__(self, data_dir: str | None = None, port: int | None = None) -> None:
        self._owns_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="influxd-"))
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._child: ChildProcess | None = None
        self.log_path = self.data_dir / "influxd.log"

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self._child.proc if self._child is not None else None

    def start(self, timeout: float = 60) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFLUXD_")}
        env["INFLUXD_CONFIG_PATH"] = str(self.data_dir / "no-config.toml")
        args = [
            find_influxd(),
            f"--bolt-path={self.data_dir / 'influxd.bolt'}",
            f"--engine-path={self.data_dir / 'engine'}",
            f"--sqlite-path={self.data_dir / 'influxd.sqlite'}",
            f"--http-bind-address=127.0.0.1:{self.port}",
            "--reporting-disabled",
            "--log-level=error",
        ]
        self._child = ChildProcess("influxd", args, self.log_path, env=env, cwd=self.data_dir)
        self._child.start(self._healthy, timeout)

    def _healthy(self) -> bool:
        with contextlib.suppress(OSError):
            status, body = http_json("GET", f"{self.url}/health", timeout=1)
            return status == 200 and isinstance(body, dict) and body.get("status") == "pass"
        return False

    def needs_setup(self) -> bool:
        status, body = http_json("GET", f"{self.url}/api/v2/setup")
        return status == 200 and isinstance(body, dict) and bool(body.get("allowed"))

    def onboard(self, token: str | None = None) -> InfluxCredentials:
        """POST /api/v2/setup with a token we choose (2.9 stores tokens hashed: no read-back)."""
        token = token or secrets.token_urlsafe(32)
        payload = {
            "username": USERNAME,
            "password": secrets.token_urlsafe(16),
            "org": ORG,
            "bucket": BOOTSTRAP_BUCKET,
            "retentionPeriodSeconds": 0,
            "token": token,
        }
        status, body = http_json("POST", f"{self.url}/api/v2/setup", payload)
        if status != 201:
            raise RuntimeError(f"influxd onboarding failed: {status} {body}")
        return InfluxCredentials(self.url, ORG, token)

    def stop(self) -> None:
        if self._child is not None:
            self._child.stop(timeout=15)
        self._child = None
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalInflux:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
