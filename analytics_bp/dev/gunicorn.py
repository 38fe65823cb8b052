"""gunicorn serving an app on a free port, for the benchmark and the tests: started with readiness
checked by asking it, its log kept, its workers listed, stopped in order (dev/process.py).

Why in the package's dev tools and not in tests/: the benchmark (bench/http_load.py) needs the same
server as the tests, and bench must not import the test suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from .localinflux import free_port
from .process import ChildProcess, http_ok

VENV_BIN = Path(sys.executable).parent
SHIPPED_CONFIG = "python:analytics_bp.gunicorn_conf"


class Gunicorn:
    """An app (the collector by default) under a real gunicorn with the shipped settings."""

    def __init__(self, env: Mapping[str, str], workers: int = 2, log: Path | None = None,
                 extra_args: tuple[str, ...] = (), app: str = "analytics_bp:create_app()",
                 ready_path: str = "/analytics/health", config: str = SHIPPED_CONFIG,
                 cwd: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "ANALYTICS_BIND": f"127.0.0.1:{self.port}",
                    "ANALYTICS_WORKERS": str(workers)}
        self.log_path = log or Path(env.get("ANALYTICS_STATE_DIR", "/tmp")) / "gunicorn.log"
        self.ready_path = ready_path  # /analytics/health needs InfluxDB; agent.js does not
        self.app = app
        self.child = ChildProcess(
            "gunicorn", [str(VENV_BIN / "gunicorn"), "-c", config, *extra_args, app],
            self.log_path, env=self.env, cwd=cwd)

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.child.proc

    def start(self) -> Gunicorn:
        self.child.start(http_ok(self.url + self.ready_path), timeout=20)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def signal(self, sig: int) -> None:
        self.child.signal(sig)

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.child.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def stop(self, timeout: float = 40) -> None:
        self.child.stop(timeout)

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
