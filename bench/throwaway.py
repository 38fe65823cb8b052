"""A throwaway influxd for the standalone probes (`make bench` runs its own in run.py)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from analytics_bp.dev.admin import Admin
from analytics_bp.dev.localinflux import InfluxCredentials, LocalInflux


@contextmanager
def influxd(prefix: str) -> Iterator[tuple[Path, InfluxCredentials, Admin]]:
    """(a scratch folder, credentials, an admin client) of a fresh influxd, gone afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp, \
            LocalInflux(data_dir=str(Path(tmp) / "influxd")) as server:
        server.start()
        creds = server.onboard()
        admin = Admin(creds.url, creds.org, creds.token, timeout_ms=600_000)
        try:
            yield Path(tmp), creds, admin
        finally:
            admin.close()
