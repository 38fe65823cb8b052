"""The structure's promises (issue 18): settings as data, Flask's conventions, the host-shared
registry and the spool, each checked on its own."""

from __future__ import annotations

import os
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from analytics_bp import Analytics, settings
from analytics_bp.registry import PeriodRegistry
from analytics_bp.spool import Spool
from tests.support.influx import Influx, flush

ROOT = Path(__file__).parents[2]


def test_config_has_exactly_the_settings() -> None:
    assert [f.name for f in fields(settings.Config)] == [
        s.name.removeprefix("ANALYTICS_").lower() for s in settings.SETTINGS]


def test_every_server_variable_read_is_a_documented_server_setting() -> None:
    read = set()
    for path in [ROOT / "gunicorn.conf.py", *(ROOT / "analytics_bp").glob("*.py")]:
        read |= set(re.findall(r'server_setting\("([A-Z0-9_]+)"', path.read_text()))
    names = {s.name for s in settings.SERVER_SETTINGS}
    assert read and read <= names
    table = (ROOT / "docs" / "config.md").read_text().split("<!-- server:begin -->")[1]
    assert set(re.findall(r"^\| `([A-Z0-9_]+)` \|", table, flags=re.M)) == names


BAD_SETTINGS = [
    ("ANALYTICS_MAX_BODY", "100", "ANALYTICS_MAX_BODY='100': expected an integer >= 512"),
    ("ANALYTICS_TRUSTED_PROXIES", "-1", "ANALYTICS_TRUSTED_PROXIES='-1': expected an integer >= 0"),
    ("ANALYTICS_MAX_TAG_VALUES", "0", "ANALYTICS_MAX_TAG_VALUES='0': expected an integer >= 1"),
    ("ANALYTICS_SALT_PERIOD", "week", "ANALYTICS_SALT_PERIOD='week': expected `day` or `month`"),
    ("ANALYTICS_FLUSH_INTERVAL", "0", "ANALYTICS_FLUSH_INTERVAL='0': expected a number of seconds > 0"),
    ("ANALYTICS_RESPECT_DNT", "maybe", "ANALYTICS_RESPECT_DNT='maybe': not a boolean: 'maybe'"),
    ("ANALYTICS_TIMEZONE", "Mars/Base", "ANALYTICS_TIMEZONE='Mars/Base': not a time zone name"),
    ("ANALYTICS_BUCKET", "a b", "ANALYTICS_BUCKET='a b': expected a bucket name"),
    ("ANALYTICS_DASHBOARD_TOKEN", "secret-but-short", "ANALYTICS_DASHBOARD_TOKEN=(hidden): expected "
     "a random token of at least 32 characters"),
    ("ANALYTICS_DASHBOARD_TOKEN", "a" * 32, "ANALYTICS_DASHBOARD_TOKEN=(hidden): too easy to guess "
     "(about 9 bits by zxcvbn's estimate, 80 needed)"),
    ("ANALYTICS_PERMITTED_DOMAINS", "", "ANALYTICS_PERMITTED_DOMAINS='': expected a comma list"),
    ("ANALYTICS_NOTE_EVENTS", "nope", "ANALYTICS_NOTE_EVENTS='nope': expected events of "
     "ANALYTICS_PERMITTED_EVENTS; not permitted: nope"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_SETTINGS, ids=[b[0] for b in BAD_SETTINGS])
def test_a_bad_setting_is_one_line_naming_it(name: str, value: str, message: str) -> None:
    with pytest.raises(settings.ConfigError) as caught:
        settings.load({"ANALYTICS_PERMITTED_DOMAINS": "example.com", name: value})
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text
    others = {s.name for s in settings.SETTINGS} - {name, "ANALYTICS_PERMITTED_EVENTS"}
    assert not any(re.search(rf"\b{o}\b", text) for o in others)
    assert "secret-but-short" not in text


def test_one_extension_object_serves_several_apps_and_none_yet(influx: Influx, tmp_path: Path) -> None:
    analytics = Analytics()  # before any app: the decorator must already work

    @analytics.track("reports.build")
    def build() -> str:
        return "ok"

    apps = []
    for n in (1, 2):
        app = Flask(f"app{n}")
        app.config.update(ANALYTICS_PERMITTED_DOMAINS="example.com", ANALYTICS_BUCKET=f"t_two_{n}_x",
                          ANALYTICS_STATE_DIR=str(tmp_path / str(n)), ANALYTICS_HMAC_SECRET="s",
                          ANALYTICS_FLUSH_INTERVAL=0.2, **influx.creds.as_env())
        influx.admin.ensure_bucket(f"t_two_{n}_x", 0)
        analytics.init_app(app)
        apps.append(app)
    assert all(set(a.extensions) >= {"analytics"} and "analytics_ext" not in a.extensions for a in apps)
    with apps[1].app_context():
        assert build() == "ok"  # the second app's usage API, found when the function ran
        analytics.count("call", "api", 3)
    with pytest.raises(RuntimeError):
        analytics.count("call", "api")  # outside any app: no "last app" to fall back on
    for app in apps:
        flush(app)
        app.extensions["analytics"].close()
    got = [influx.query('from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement '
                        '== "usage" or r._measurement == "usage_count") |> group() |> count()',
                        b=f"t_two_{n}_x") for n in (1, 2)]
    assert got[0] == [] and got[1][0]["_value"] >= 2
    for n in (1, 2):
        influx.admin.delete_bucket(f"t_two_{n}_x")


def test_the_registry_holds_its_cap_across_processes_and_forgets_old_periods(tmp_path: Path) -> None:
    first, second = PeriodRegistry(tmp_path), PeriodRegistry(tmp_path)  # two workers of a host
    assert first.add("2026-03", "k", "a", cap=2) == (True, True, 1)
    assert second.add("2026-03", "k", "b", cap=2) == (True, True, 2)
    assert first.add("2026-03", "k", "c", cap=2) == (False, False, 2)  # sees b from the other
    assert second.add("2026-03", "k", "a", cap=2) == (True, False, 2)
    assert first.contains("2026-03", "k", "b")
    assert second.add("2026-04", "k", "c", cap=2) == (True, True, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-04"]


def test_the_spool_orders_locks_and_sets_aside(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), slot=7)
    for text in (b"a 1\n", b"b 2\n", b"c 3\n"):
        spool.write_segment(text)
    spool.sync()
    pending = spool.pending()
    assert [p.read_bytes() for p in pending] == [b"a 1\n", b"b 2\n", b"c 3\n"]
    assert spool.size() == 12
    held = spool.open_locked(pending[0])
    assert held is not None and Spool.open_locked(pending[0]) is None  # another deliverer has it
    held.close()
    Spool.delete(pending[0])
    assert Spool.open_locked(pending[0]) is None and len(spool.pending()) == 2
    aside = spool.set_aside([b"bad line"], "why")
    assert aside.read_bytes() == b"bad line\n" and aside.with_suffix(".reason").read_text() == "why\n"
    assert spool.set_aside_count() == 1 and oct(aside.stat().st_mode & 0o777) == "0o600"


def test_no_type_ignore_in_the_package() -> None:
    found: dict[str, Any] = {p.name: p.read_text().count("type: ignore")
                             for p in (ROOT / "analytics_bp").rglob("*.py")}
    assert sum(found.values()) == 0, {k: v for k, v in found.items() if v}


COMMANDS = {
    "flask": ["flask", "analytics", "setup"],
    "gunicorn": ["gunicorn", "-c", "gunicorn.conf.py", "analytics_bp:create_app()"],
    "make run": ["python", "-m", "analytics_bp.dev.devstack"],
}


@pytest.mark.parametrize("program", list(COMMANDS))
def test_a_config_error_is_one_line_and_a_non_zero_exit(program: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support.build import ROOT
    from tests.support.servers import VENV_BIN

    env = {**os.environ, "ANALYTICS_PERMITTED_DOMAINS": "example.com", "ANALYTICS_MAX_BODY": "10",
           "INFLUXDB_V2_URL": "http://127.0.0.1:9", "INFLUXDB_V2_ORG": "o", "INFLUXDB_V2_TOKEN": "t",
           "FLASK_APP": "analytics_bp:create_app()", "ANALYTICS_STATE_DIR": str(tmp_path),
           "ANALYTICS_BIND": "127.0.0.1:0"}
    args = COMMANDS[program]
    exe = sys.executable if args[0] == "python" else str(VENV_BIN / args[0])
    done = subprocess.run([exe, *args[1:]], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Traceback" not in output
    expected = "ANALYTICS_MAX_BODY='10': expected an integer >= 512"
    assert [line for line in output.splitlines() if expected in line] == [
        {"flask": "Error: ", "gunicorn": "gunicorn: ", "make run": "make run: "}[program] + expected]
