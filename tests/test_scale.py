"""Several collector hosts on one InfluxDB (issue 21, first part): writer slots per host."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from analytics_bp import settings
from analytics_bp.clock import claim_slot, host_slots

from .servers import ROOT, VENV_BIN


def test_without_a_host_id_every_host_starts_at_the_same_slot(tmp_path: Path) -> None:
    """The worst case the issue names, made certain: two hosts' first workers, same slot."""
    a, fd_a = claim_slot(tmp_path / "host-a" / "slots")
    b, fd_b = claim_slot(tmp_path / "host-b" / "slots")
    assert a == b == 0
    for fd in (fd_a, fd_b):
        os.close(fd)


def test_host_ids_give_each_host_its_own_slots(tmp_path: Path) -> None:
    claimed = {}
    fds = []
    for host in (0, 1, 2):
        slots = host_slots(host, 10)
        for worker in range(3):
            slot, fd = claim_slot(tmp_path / f"host-{host}" / "slots", slots)
            claimed[(host, worker)] = slot
            fds.append(fd)
    assert claimed == {(h, w): h * 10 + w for h in (0, 1, 2) for w in range(3)}
    with pytest.raises(RuntimeError, match="all 1 writer slots of this host"):
        slot, fd = claim_slot(tmp_path / "host-9" / "slots", range(90, 91))
        fds.append(fd)
        claim_slot(tmp_path / "host-9" / "slots", range(90, 91))
    for fd in fds:
        os.close(fd)


def test_a_host_id_past_the_slots_is_a_config_error() -> None:
    base = {"ANALYTICS_PERMITTED_DOMAINS": "example.com"}
    assert settings.load({**base, "ANALYTICS_HOST_ID": "99"}).writer_slots == range(990, 1000)
    with pytest.raises(settings.ConfigError, match=r"ANALYTICS_HOST_ID=100: expected 0 to 99 with "
                                                   r"ANALYTICS_SLOTS_PER_HOST=10"):
        settings.load({**base, "ANALYTICS_HOST_ID": "100"})
    assert settings.load(base).writer_slots == range(1000)


def test_more_workers_than_slots_stops_gunicorn_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "ANALYTICS_PERMITTED_DOMAINS": "example.com", "ANALYTICS_HOST_ID": "3",
           "ANALYTICS_SLOTS_PER_HOST": "4", "ANALYTICS_WORKERS": "5", "ANALYTICS_BIND": "127.0.0.1:0",
           "INFLUXDB_V2_URL": "http://127.0.0.1:9", "INFLUXDB_V2_ORG": "o", "INFLUXDB_V2_TOKEN": "t",
           "ANALYTICS_STATE_DIR": str(tmp_path)}
    done = subprocess.run([str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "analytics_bp:create_app()"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert ("gunicorn: ANALYTICS_WORKERS=5: expected at most 4 worker processes on this host"
            in done.stderr)
