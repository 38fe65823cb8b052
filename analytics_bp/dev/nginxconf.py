"""Render the shipped nginx files (nginx/) into one runnable nginx.conf for tests and `make run`.

Why render instead of keeping a second config: the tests must exercise exactly what users copy,
so only machine-specific values are replaced: the listen address, the upstream, the static root,
the log and pid paths.
"""

from __future__ import annotations

import os
from pathlib import Path

NGINX_DIR = Path(__file__).resolve().parent.parent / "deploy" / "nginx"  # the shipped copy


def render_example(listen: str, upstream: str | list[str], prefix: str, static_root: str,
                   rate: str = "10r/s") -> str:
    """`upstream`: one collector's address, or several (the shipped config hashes clients)."""
    servers = [upstream] if isinstance(upstream, str) else upstream
    dropin = (NGINX_DIR / "analytics.conf").read_text()
    dropin = dropin.replace("/srv/analytics_bp/static", static_root)
    dropin = dropin.replace("/var/log/nginx/analytics.log", f"{prefix}/analytics.log")
    dropin = dropin.replace("/var/log/nginx/analytics-error.log", f"{prefix}/analytics-error.log")
    example = (NGINX_DIR / "example.conf").read_text()
    example = example.replace("server 127.0.0.1:8000;",
                              "\n    ".join(f"server {address};" for address in servers))
    example = example.replace("listen 80;", f"listen {listen};")
    example = example.replace("rate=10r/s", f"rate={rate}")
    example = example.replace("\n    include /etc/nginx/snippets/analytics.conf;", "\n" + dropin)
    temp = "\n".join(f"    {kind}_temp_path {prefix}/{kind}_temp;"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # Started as root (CI, containers), nginx would run its workers as `nobody`, who cannot read a
    # checkout or temp directory with mode 0700; this local instance keeps root's identity instead.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
{temp}
{example}
}}
"""
