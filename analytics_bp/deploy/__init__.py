"""The deployment files the package carries (nginx/, grafana/ copies, see scripts/package_assets.py)
and how `flask analytics export` writes them out for this app's settings."""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from ..settings import Config, InfluxTarget
from ..snippet import AGENT_FILES

HERE = resources.files("analytics_bp") / "deploy"


def _files(folder: Traversable, prefix: Path = Path()) -> list[tuple[Path, Traversable]]:
    out: list[tuple[Path, Traversable]] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            out += _files(entry, prefix / entry.name)
        elif not entry.name.endswith((".py", ".pyc")):
            out.append((prefix / entry.name, entry))
    return out


def export_grafana(cfg: Config, target: InfluxTarget, directory: Path) -> list[Path]:
    """Dashboards (for provisioning, and their twins with `__inputs` for Grafana's import page)
    and provisioning. Nothing in them is of this machine but what the user configured: the
    datasource names this app's InfluxDB URL, organisation and bucket (quoted as YAML strings),
    the dashboards the sites' time zone; the token stays `${INFLUXDB_V2_TOKEN}`, never written
    out, and the dashboards provider keeps Grafana's own path (copy or mount the files there)."""
    written = []
    for relative, source in _files(HERE / "grafana"):
        text = source.read_text()
        if relative.name == "analytics.yaml" and "datasources" in relative.parts:
            text = _filled_datasource(text, cfg, target)
        elif relative.suffix == ".json":
            text = _in_site_zone(text, cfg)
        written.append(_write(directory / relative, text))
    return written


def _filled_datasource(text: str, cfg: Config, target: InfluxTarget) -> str:
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return (f"# Written by `flask analytics export grafana` for bucket {cfg.bucket}. Grafana reads the\n"
            "# token from INFLUXDB_V2_TOKEN in its own environment.\n"
            + body.replace("${INFLUXDB_V2_URL}", json.dumps(target.url))
            .replace("${INFLUXDB_V2_ORG}", json.dumps(target.org))
            .replace("${ANALYTICS_BUCKET}", json.dumps(cfg.bucket)) + "\n")


def _in_site_zone(text: str, cfg: Config) -> str:
    """A dashboard whose days are the sites' days (ANALYTICS_TIMEZONE, an IANA name the settings
    validated): Grafana's time zone, and the location of every query's day windows."""
    zone = "utc" if cfg.timezone in ("UTC", "Etc/UTC") else cfg.timezone
    return (text.replace('"timezone": "utc"', f'"timezone": {json.dumps(zone)}')
            .replace('timezone.location(name: \\"UTC\\")', f'timezone.location(name: \\"{cfg.timezone}\\")'))


def export_nginx(cfg: Config, directory: Path) -> list[Path]:
    """The drop-in and the example server, with every agent build beside them in `static/`; the
    example includes the drop-in from where it was written."""
    static = (directory / "static").resolve()
    written = []
    for name in AGENT_FILES.values():
        data = (resources.files("analytics_bp") / "static" / name).read_bytes()
        target = static / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(target)
    for relative, source in _files(HERE / "nginx"):
        text = (source.read_text().replace("/srv/analytics_bp/static", str(static))
                .replace("/etc/nginx/snippets/analytics.conf", str((directory / "analytics.conf").resolve())))
        if cfg.url_prefix != "/analytics":
            text = text.replace("/analytics/", f"{cfg.url_prefix}/")
        written.append(_write(directory / relative, text))
    return written


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
