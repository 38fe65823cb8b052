"""Real servers for tests: gunicorn serving the collector, nginx in front, a static site."""

from __future__ import annotations

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

from analytics_bp.dev import gunicorn as dev_gunicorn
from analytics_bp.dev.localinflux import free_port
from analytics_bp.dev.process import ChildProcess

ROOT = Path(__file__).parents[2]
NGINX = "/usr/sbin/nginx"
VENV_BIN = Path(sys.executable).parent


def chromium_args(*mapped_hosts: str) -> list[str]:
    """Headless Chromium for the tests; `mapped_hosts` resolve to 127.0.0.1 (a site on a real
    host name, on this machine)."""
    rules = ",".join(f"MAP {host} 127.0.0.1" for host in mapped_hosts)
    return ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            *([f"--host-resolver-rules={rules}"] if rules else []),
            "--disable-blink-features=AutomationControlled"]


CHROMIUM_ARGS = chromium_args("site.test")


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


class Gunicorn(dev_gunicorn.Gunicorn):
    """The dev tools' gunicorn with the checkout's gunicorn.conf.py, the file README's
    deployment uses, so the tests cover that file too."""

    def __init__(self, env: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(env, config=str(ROOT / "gunicorn.conf.py"), cwd=ROOT, **kwargs)


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

    def __init__(self, upstream: str | list[str], workdir: Path, rate: str = "10r/s",
                 tls: tuple[Path, Path] | None = None) -> None:
        """`tls`: (certificate, key): the same server over https (the example's TLS variant)."""
        from analytics_bp.dev.nginxconf import render_example

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix = workdir / "nginx"
        self.prefix.mkdir(parents=True, exist_ok=True)
        self.conf = self.prefix / "nginx.conf"
        listen = f"127.0.0.1:{self.port}"
        text = render_example(listen=listen, upstream=upstream, prefix=str(self.prefix),
                              static_root=str(ROOT / "analytics_bp" / "static"), rate=rate)
        if tls is not None:
            text = text.replace(f"listen {listen};", f"listen {listen} ssl;\n    ssl_certificate "
                                f"{tls[0]};\n    ssl_certificate_key {tls[1]};")
        base = self.url.replace("http://", "https://") if tls else self.url
        self.ready_url = base + "/analytics/agent.js"
        self.conf.write_text(text)
        self.child = ChildProcess(
            "nginx", [NGINX, "-c", str(self.conf), "-p", str(self.prefix), "-g", "daemon off;"],
            self.prefix / "error.log", stop_signal=signal.SIGQUIT)

    def __enter__(self) -> Nginx:
        check = subprocess.run([NGINX, "-t", "-c", str(self.conf), "-p", str(self.prefix)],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.child.start(self._ready, timeout=20)
        return self

    def _ready(self) -> bool:
        import ssl

        context = ssl._create_unverified_context()  # readiness only; the test checks the cert
        try:
            with urllib.request.urlopen(self.ready_url, timeout=2, context=context) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def access_log(self) -> str:
        path = self.prefix / "analytics.log"
        return path.read_text() if path.exists() else ""

    def __exit__(self, *exc: object) -> None:
        self.child.stop(timeout=10)


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
