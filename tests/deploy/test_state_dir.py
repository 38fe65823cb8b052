"""The collector's state folder belongs to its user alone (deploy): attacks planted as `nobody`.

The state folder holds the salt (with it, visitors' IPs can be recovered from stored hashes), the
spool (delivered to InfluxDB as it is) and the tag registry (appended to on public beacons). Each
test plants what another local user would, and shows it refused at start-up or never followed.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analytics_bp import periods, safefs, settings
from analytics_bp.settings import ConfigError
from tests.support.build import ROOT
from tests.support.influx import Influx, flush
from tests.support.servers import VENV_BIN
from tests.support.web import CHROME_UA

NOBODY = 65534
TOKEN = "state-7Rq2Xm9Lw4Zt8Nc1Yh3Bs6Jd5Fa0Kp"
BASE = {"ANALYTICS_PERMITTED_DOMAINS": "example.com"}


def as_nobody(script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a shell script as the unprivileged user `nobody` (the suite runs as root, as CI does)."""
    assert os.geteuid() == 0, "these tests act as another local user: run them as root (CI does)"
    return subprocess.run(["sh", "-c", script], user=NOBODY, group=NOBODY, check=check,
                          capture_output=True, text=True, cwd="/")


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder every local user can create things in, like /tmp (mode 1777)."""
    root = Path(tempfile.mkdtemp(prefix="state-attack-", dir="/tmp"))
    root.chmod(0o1777)
    yield root
    shutil.rmtree(root)


def load(**overrides: str) -> settings.Config:
    return settings.load({**BASE, **overrides})


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_default_state_folder_is_private_to_the_user(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o755)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    cfg = load()
    state = home / ".local" / "state" / "analytics_bp"
    assert (cfg.state_dir, cfg.salt_dir, cfg.spool_dir) == (
        str(state), str(state / "salts"), str(state / "spool"))
    settings.check_state_dirs(cfg)
    assert [mode(p) for p in (state, state / "salts", state / "spool")] == [0o700] * 3
    tmp_path.chmod(0o755)  # let nobody reach the folder, so only its own mode stops them
    refused = as_nobody(f"touch {state}/planted", check=False)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    xdg = tmp_path / "xdg"
    xdg.mkdir()
    monkeypatch.setenv("XDG_STATE_HOME", str(xdg))
    assert load().state_dir == str(xdg / "analytics_bp")


def test_without_a_home_the_temp_folder_must_be_this_users_own(shared: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/nonexistent")
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    cfg = load()
    fallback = shared / f"analytics_bp-{os.geteuid()}"
    assert cfg.state_dir == str(fallback)
    as_nobody(f"mkdir -m 0777 {fallback}")  # the attacker was first
    with pytest.raises(ConfigError) as err:
        settings.check_state_dirs(cfg)
    assert str(err.value) == (
        f"ANALYTICS_STATE_DIR={str(fallback)!r}: the folder is owned by uid {NOBODY}, not by this "
        "user (uid 0); expected a folder that only the collector's user owns and can write "
        "(mode 0700)")
    fallback.rmdir()
    settings.check_state_dirs(cfg)  # created by us this time: private
    assert mode(fallback) == 0o700 and os.lstat(fallback).st_uid == os.geteuid()


def test_a_state_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    with pytest.raises(ConfigError, match=r"the folder is writable by group or others \(mode 0777\)"):
        settings.check_state_dirs(load(ANALYTICS_STATE_DIR=str(state)))


def test_a_permissive_umask_still_leaves_a_tree_the_next_start_accepts(make_app: Any,
                                                                       tmp_path: Path) -> None:
    state = tmp_path / "new" / "deep" / "state"
    old = os.umask(0)  # some containers start services so
    try:
        app = make_app(ANALYTICS_STATE_DIR=str(state), ANALYTICS_DASHBOARD_TOKEN=TOKEN)
        assert beacon(app).status_code == 204  # salts, registry, spool, slots, golive, sessions
        flush(app)
        app.extensions["analytics"].close()
        assert safefs.tree_problem(str(state)) == ("", "")
        assert {mode(p) for p in (tmp_path / "new", state, state / "salts", state / "spool")} == {0o700}
        make_app(ANALYTICS_STATE_DIR=str(state), ANALYTICS_DASHBOARD_TOKEN=TOKEN)  # starts again
    finally:
        os.umask(old)


def month_key() -> str:
    """The tag registry's current period."""
    return periods.key("month", time.time())


def day_salt() -> str:
    return "salts/salt-" + periods.key("day", time.time())


# What `nobody` plants in a state folder it could write to: (folder made writable, the plant).
PLANTS = {
    "a salt": ("salts", f"head -c 32 /dev/zero > {{state}}/{day_salt()}"),
    "a spool segment": ("spool", "printf 'pageview,domain=example.com count=1i 1\\n' > "
                                 "{state}/spool/00000000000000000001-999-00000001.lp"),
    "a registry symlink": ("tags", "ln -s /etc/cron.d/planted {state}/tags/x"),
}


@pytest.mark.parametrize("plant", list(PLANTS))
def test_what_another_user_planted_stops_start_up_with_one_line(plant: str, shared: Path) -> None:
    state = shared / "state"
    cfg = load(ANALYTICS_STATE_DIR=str(state))
    settings.check_state_dirs(cfg)
    folder, script = PLANTS[plant]
    (state / folder).mkdir(exist_ok=True)
    for path in (state, state / folder):
        path.chmod(0o777)  # a careless chmod, or a folder handed over from elsewhere
    as_nobody(script.format(state=state))
    with pytest.raises(ConfigError, match=r"the folder is writable by group or others \(mode 0777\)"):
        settings.check_state_dirs(cfg)
    state.chmod(0o700)
    with pytest.raises(ConfigError, match=rf"{state / folder} is writable by group or others"):
        settings.check_state_dirs(cfg)
    (state / folder).chmod(0o700)  # the folders fixed, the plant still there
    with pytest.raises(ConfigError) as err:
        settings.check_state_dirs(cfg)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"ANALYTICS_STATE_DIR={str(state)!r}: ")
    expected = "is a symbolic link" if plant == "a registry symlink" else f"is owned by uid {NOBODY}"
    assert expected in message


def test_gunicorn_refuses_a_state_folder_another_user_made(shared: Path) -> None:
    state = shared / "state"
    as_nobody(f"mkdir -m 0700 {state}")
    env = {**os.environ, **BASE, "ANALYTICS_BIND": "127.0.0.1:0", "ANALYTICS_WORKERS": "1",
           "INFLUXDB_V2_URL": "http://127.0.0.1:9", "INFLUXDB_V2_ORG": "o", "INFLUXDB_V2_TOKEN": "t",
           "ANALYTICS_STATE_DIR": str(state)}
    done = subprocess.run([str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py",
                           "analytics_bp:create_app()"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert (f"gunicorn: ANALYTICS_STATE_DIR={str(state)!r}: the folder is owned by uid {NOBODY}, "
            "not by this user (uid 0)") in done.stderr


PV = {"domain": "example.com", "page": "/", "timezone": 0, "platform": "Linux x86_64",
      "sess_id": "abcd-1234"}


def beacon(app: Any) -> Any:
    return app.test_client().post("/analytics/pageview", data=json.dumps(PV),
                                  content_type="text/plain", headers={"User-Agent": CHROME_UA})


def test_a_link_in_the_tag_registry_is_never_followed(make_app: Any, tmp_path: Path) -> None:
    app = make_app()
    state = app.extensions["analytics"]
    registry = state.guard.registry
    link = registry._path(month_key(), "*\x00domain")  # the first file a beacon appends to
    link.parent.mkdir(parents=True, exist_ok=True)
    target = tmp_path / "outside" / "crontab"
    target.parent.mkdir()
    link.symlink_to(target)
    resp = beacon(app)
    assert (resp.status_code, resp.get_data(as_text=True)) == (
        503, "collector state refused, see its log\n")
    assert not target.exists()
    target.write_text("untouched\n")
    assert beacon(app).status_code == 503 and target.read_text() == "untouched\n"


def test_a_linked_salt_is_never_used(make_app: Any, tmp_path: Path) -> None:
    app = make_app()
    cfg = app.extensions["analytics"].config
    known = tmp_path / "known-salt"
    known.write_bytes(b"\0" * 32)
    Path(cfg.salt_dir).mkdir(parents=True, exist_ok=True)
    (Path(cfg.state_dir) / day_salt()).symlink_to(known)
    assert beacon(app).status_code == 503


def test_a_linked_spool_segment_is_removed_unread(make_app: Any, influx: Influx, bucket: str,
                                                  tmp_path: Path) -> None:
    app = make_app()
    assert beacon(app).status_code == 204
    outside = tmp_path / "forged.lp"
    outside.write_text(f"pageview,domain=example.com,page=/forged count=1i,visitor=\"x\" "
                       f"{time.time_ns()}\n")
    spool = Path(app.extensions["analytics"].config.spool_dir)
    link = spool / "00000000000000000001-999-00000001.lp"
    link.symlink_to(outside)
    flush(app)
    pages = sorted(r["_value"] for r in influx.raw_rows(bucket)
                   if r["_measurement"] == "pageview" and r["_field"] == "page")
    assert pages == ["/"]
    assert not os.path.lexists(link) and outside.exists()
