"""Real servers for tests: gunicorn serving the collector, nginx in front, a static site."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from analytics_bp.localinflux import free_port

ROOT = Path(__file__).parent.parent
VENV_BIN = Path(sys.executable).parent


def wait_http(url: str, timeout: float = 20, ok: tuple[int, ...] = (200,)) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status in ok:
                    return
        except Exception as err:  # not up yet
            last = err
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s: {last}")


class Gunicorn:
    """An app (the collector by default) under a real gunicorn with the repository's gunicorn.conf.py."""

    def __init__(self, env: Mapping[str, str], workers: int = 2, log: Path | None = None,
                 extra_args: tuple[str, ...] = (), app: str = "analytics_bp:create_app()") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "ANALYTICS_BIND": f"127.0.0.1:{self.port}",
                    "ANALYTICS_WORKERS": str(workers)}
        self.log_path = log or Path(env.get("ANALYTICS_STATE_DIR", "/tmp")) / "gunicorn.log"
        self.extra_args = extra_args
        self.app = app
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Gunicorn:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), *self.extra_args,
             self.app],
            env=self.env, cwd=ROOT, stdout=log, stderr=log)
        log.close()
        try:
            wait_http(self.url + "/analytics/health")
        except RuntimeError:
            self.stop()
            raise RuntimeError("gunicorn did not start:\n" + self.log()) from None
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def stop(self, timeout: float = 40) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class StaticSite:
    """Serve fixed pages (path -> html) on another origin than the collector."""

    def __init__(self, pages: dict[str, str]) -> None:
        self.pages = pages
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0].split("#")[0]
                body = site.pages.get(path) or site.pages.get("*")
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StaticSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Nginx:
    """A real nginx (Debian's) running the shipped config, rendered for this machine."""

    def __init__(self, upstream: str, workdir: Path, rate: str = "10r/s") -> None:
        from analytics_bp.nginxconf import render_example

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix = workdir / "nginx"
        self.prefix.mkdir(parents=True, exist_ok=True)
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(render_example(
            listen=f"127.0.0.1:{self.port}", upstream=upstream, prefix=str(self.prefix),
            static_root=str(ROOT / "analytics_bp" / "static"), rate=rate))
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        nginx = "/usr/sbin/nginx"
        check = subprocess.run([nginx, "-t", "-c", str(self.conf), "-p", str(self.prefix)],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([nginx, "-c", str(self.conf), "-p", str(self.prefix),
                                      "-g", "daemon off;"])
        try:
            wait_http(self.url + "/analytics/agent.js")
        except RuntimeError as err:  # __exit__ will not run: stop it here, say why it failed
            self.__exit__()
            errors = (self.prefix / "error.log")
            tail = errors.read_text()[-2000:] if errors.exists() else ""
            raise RuntimeError(f"nginx did not serve agent.js: {err}\n{tail}") from None
        return self

    def access_log(self) -> str:
        path = self.prefix / "analytics.log"
        return path.read_text() if path.exists() else ""

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Sender:
    """Send beacons from a thread at a steady rate; remember when each got which status."""

    def __init__(self, url: str, body: bytes, rate: float = 50,
                 headers: Mapping[str, str] | None = None) -> None:
        self.url = url
        self.body = body
        self.interval = 1.0 / rate
        self.headers = {"Content-Type": "text/plain", "User-Agent": CHROME_LIKE_UA,
                        **(headers or {})}
        self.results: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                conn.request("POST", parts.path, body=self.body, headers=self.headers)
                status = conn.getresponse().status
                conn.close()
            except OSError:
                status = 0
            self.results.append((time.monotonic(), status))
            delay = self.interval - (time.monotonic() - started)
            if delay > 0:
                time.sleep(delay)

    def ok(self) -> int:
        return sum(1 for _, s in self.results if s == 204)

    def __enter__(self) -> Sender:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(timeout=20)


CHROME_LIKE_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
