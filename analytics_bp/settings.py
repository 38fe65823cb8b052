"""Every ANALYTICS_* setting, as data.

Why data: the same list fills Flask config defaults, reads environment variables for the standalone
app, validates values at `init_app` time (a bad setting fails start-up, naming the setting, instead
of failing a beacon later), and is checked against the config table in docs/config.md by a test.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import click

from . import safefs

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
BUCKET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class ConfigError(ValueError, click.ClickException):
    """A setting has a value the extension cannot work with; the message names the setting, its
    value (unless secret) and what is expected, on one line.

    Also a ClickException, so `flask analytics ...` prints `Error: <message>` and exits 1 instead of
    a traceback."""

    def __init__(self, message: str) -> None:
        ValueError.__init__(self, message)
        click.ClickException.__init__(self, message)

    def __str__(self) -> str:
        return self.message


def startup_check(config: Mapping[str, Any], program: str, workers: int = 0,
                  needs_influx: bool = True) -> Config:
    """Load every setting (and where InfluxDB is) before a server starts, and check that its
    `workers` have a writer slot each; on a problem, print one line and exit 2: no traceback,
    nothing started."""
    try:
        cfg = load(config)
        if needs_influx:
            influx_target(config, cfg.bucket)
        check_state_dirs(cfg)
        if workers > len(cfg.writer_slots):
            raise ConfigError(f"ANALYTICS_WORKERS={workers}: expected at most {len(cfg.writer_slots)} "
                              "worker processes on this host (ANALYTICS_SLOTS_PER_HOST writer slots "
                              "with ANALYTICS_HOST_ID)")
        return cfg
    except ConfigError as err:
        print(f"{program}: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def _as_list(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value or ())
    return tuple(dict.fromkeys(i.strip().lower() for i in items if i and i.strip()))


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        if value.strip().lower() in {"1", "true", "yes", "on"}:
            return True
        if value.strip().lower() in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"not a boolean: {value!r}")
    return bool(value)


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("not an integer")
    return int(value)


def _as_duration(value: Any) -> int:
    """'30d' / '12h' / '0' (forever) -> seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"0", "inf", "forever"}:
        return 0
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration like 30d or 12h: {value!r}")
    return int(match.group(1)) * _DURATION_SECONDS[match.group(2)]


def _as_timezone(value: Any) -> str:
    """An IANA time zone name that this machine's tz database knows."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = _as_str(value) or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"not a time zone name like Europe/Berlin: {name!r}") from None
    return name


def _as_str(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _int_at_least(low: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        number = _as_int(value)
        if number < low:
            raise ValueError(f"expected an integer >= {low}")
        return number

    return parse


def _host_id(value: Any) -> int | None:
    text = _as_str(value)
    if not text:
        return None
    number = _as_int(text)
    if number < 0:
        raise ValueError("expected a host number >= 0, or empty for a single host")
    return number


def _positive_float(value: Any) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("expected a number of seconds > 0")
    return number


def _required_list(value: Any) -> tuple[str, ...]:
    items = _as_list(value)
    if not items:
        raise ValueError("expected a comma list of site hosts, such as example.com,*.example.org")
    return items


# ANALYTICS_AGENT_EXTRAS value -> the event name the agent's extras build sends for it.
EXTRA_EVENTS = {"outbound": "outbound", "downloads": "download", "engagement": "engagement"}


def _extras(value: Any) -> tuple[str, ...]:
    items = _as_list(value)
    unknown = [i for i in items if i not in EXTRA_EVENTS]
    if unknown:
        raise ValueError(f"expected a comma list of {', '.join(EXTRA_EVENTS)}; unknown: {unknown[0]}")
    return tuple(dict.fromkeys(items))


def _salt_period(value: Any) -> str:
    text = _as_str(value).lower()
    if text not in ("day", "month"):
        raise ValueError("expected `day` or `month`")
    return text


def _bucket(value: Any) -> str:
    text = _as_str(value)
    if not BUCKET_NAME.match(text):
        raise ValueError("expected a bucket name of letters, digits, `_`, `.` and `-`")
    return text


TOKEN_MIN_BITS = 80
TOKEN_HINT = ("expected a random token of at least 32 characters, such as the output of "
              "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'` (or empty to turn "
              "the dashboard and the Stats API off)")


def _token(value: Any) -> str:
    """A bearer token that guessing cannot find: long, and random by zxcvbn's estimate (which
    sees repeats, sequences, keyboard walks and dictionary words: `'a' * 32` is ~9 bits)."""
    text = _as_str(value)
    if not text:
        return text
    if len(text) < 32:
        raise ValueError(TOKEN_HINT)
    from zxcvbn import zxcvbn

    bits = zxcvbn(text[:72])["guesses_log10"] * math.log2(10)
    if bits < TOKEN_MIN_BITS:
        raise ValueError(f"too easy to guess (about {bits:.0f} bits by zxcvbn's estimate, "
                         f"{TOKEN_MIN_BITS} needed); {TOKEN_HINT}")
    return text


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[Any], Any] = _as_str
    privacy: bool = False  # shapes what is collected or kept: the privacy notice must state it
    secret: bool = False  # never shown in an error message


SETTINGS: tuple[Setting, ...] = (
    Setting("ANALYTICS_URL_PREFIX", "/analytics", "Where the blueprint is mounted."),
    Setting("ANALYTICS_PERMITTED_DOMAINS", "", "Comma list of site hosts whose beacons are "
            "accepted; `*.example.com` allows subdomains. Required.", _required_list),
    Setting("ANALYTICS_SKIP_DOMAINS", "", "Comma list of hosts answered 204 but never stored "
            "(staging sites).", _as_list, privacy=True),
    Setting("ANALYTICS_PERMITTED_EVENTS", "", "Comma list of event names accepted by /event "
            "(compared and stored lowercased).", _as_list, privacy=True),
    Setting("ANALYTICS_AGENT_EXTRAS", "", "Comma list of `outbound`, `downloads`, `engagement`: "
            "accept the events the agent's extras build sends for them (`outbound`, `download`, "
            "`engagement`) without listing them in ANALYTICS_PERMITTED_EVENTS.", _extras,
            privacy=True),
    Setting("ANALYTICS_NOTE_EVENTS", "", "Events whose note becomes a tag in the rollups "
            "(ranked like every visitor-controlled value: ANALYTICS_TOP_VALUES).", _as_list, privacy=True),
    Setting("ANALYTICS_CORS_ORIGINS", "", "Extra allowed CORS origins; `*` allows any. By "
            "default only http(s) origins of permitted domains.", _as_list),
    Setting("ANALYTICS_BUCKET", "analytics", "Raw bucket; rollups go to `<bucket>_1h`, "
            "`<bucket>_1d` and `<bucket>_1mo`.", _bucket),
    Setting("ANALYTICS_RAW_RETENTION", "31d", "Retention of the raw bucket (`31d`, `12h`, `0` = "
            "forever). 31 days keep the whole of the default \"Last 30 days\" (the 30 days before "
            "today), so any filter on it can be answered.", _as_duration, privacy=True),
    Setting("ANALYTICS_HOURLY_RETENTION", "400d", "Retention of the hourly rollup bucket.",
            _as_duration, privacy=True),
    Setting("ANALYTICS_TRUSTED_PROXIES", 0, "How many X-Forwarded-For hops to trust (1 behind "
            "one nginx).", _int_at_least(0), privacy=True),
    Setting("ANALYTICS_SALT_PERIOD", "day", "`day` or `month`: how long a visitor hash stays "
            "the same before its salt is deleted.", _salt_period, privacy=True),
    Setting("ANALYTICS_SALT_DIR", "", "Directory shared by the workers of a host for the current "
            "salt (default: <state>/salts)."),
    Setting("ANALYTICS_STATE_DIR", "", "Directory for the collector's state: tag registry, salts, "
            "spool, sessions (default: `$XDG_STATE_HOME/analytics_bp`, else "
            "`~/.local/state/analytics_bp`; without a home of this user's, "
            "`<tmp>/analytics_bp-<uid>`). It and everything in it must belong to the collector's "
            "user and be writable by no one else: start-up stops on anything else."),
    Setting("ANALYTICS_SPOOL_DIR", "", "Durable write-ahead spool for points not yet in InfluxDB "
            "(default: <state>/spool)."),
    Setting("ANALYTICS_SPOOL_MAX_BYTES", 256 * 1024 * 1024, "Spool size at which beacons are "
            "answered 503 instead of being dropped.", _int_at_least(1)),
    Setting("ANALYTICS_HOST_ID", "", "With several collector hosts on one InfluxDB: this host's "
            "number (0, 1, 2, ...), unique per host; its writers use only its share of the 1,000 "
            "writer slots. Empty: a single host using them all.", _host_id),
    Setting("ANALYTICS_SLOTS_PER_HOST", 10, "Writer slots (so worker processes) per host when "
            "ANALYTICS_HOST_ID is set: hosts x this must stay within 1,000.", _int_at_least(1)),
    Setting("ANALYTICS_MAX_BUFFERED", 50_000, "Points a worker holds in memory before beacons get "
            "503 (only reached while the spool's disk refuses writes).", _int_at_least(1)),
    Setting("ANALYTICS_FLUSH_INTERVAL", 1.0, "Seconds between group commits of accepted points "
            "(the most a hard kill can lose).", _positive_float),
    Setting("ANALYTICS_BATCH_SIZE", 5000, "Points per write request to InfluxDB.", _int_at_least(1)),
    Setting("ANALYTICS_RESPECT_DNT", True, "Do not record requests carrying `DNT: 1` or "
            "`Sec-GPC: 1`.", _as_bool, privacy=True),
    Setting("ANALYTICS_GEOIP", False, "Look up the country from the truncated IP with the "
            "offline geoip2fast database.", _as_bool, privacy=True),
    Setting("ANALYTICS_DEVICE_LOOKUPS_PER_MINUTE", 600, "New User-Agents per minute and worker "
            "whose device class is read from Matomo's device data (about 20 ms each); past it, and "
            "at `0`, from ua-parser and the `Mobile` token.", _int_at_least(0)),
    Setting("ANALYTICS_MAX_BODY", 4096, "Largest beacon body in bytes (413 above).",
            _int_at_least(512)),
    Setting("ANALYTICS_MAX_TAG_VALUES", 1000, "Distinct values per tag and month of the "
            "server-side usage API's actions and categories; later values become `(other)`.",
            _int_at_least(1)),
    Setting("ANALYTICS_TOP_VALUES", 100, "Values of each dimension (page, source, browser, "
            "UTM value, ...) a rollup keeps per site and hour or day, ranked by distinct visitors; "
            "the rest is one `(other)` row. Bounds the rollups' series (docs/schema.md).",
            _int_at_least(1)),
    Setting("ANALYTICS_MAX_DOMAINS", 100, "Distinct domains stored per month (matters with "
            "wildcard domains).", _int_at_least(1)),
    Setting("ANALYTICS_HMAC_SECRET", "", "Key for pseudonymising user IDs in the server-side "
            "usage API; required to use it.", privacy=True, secret=True),
    Setting("ANALYTICS_MAX_SEEN", 100_000, "Distinct identifiers `seen()` counts per category "
            "and salt period (they are held in memory); later ones are not counted.",
            _int_at_least(1)),
    Setting("ANALYTICS_USAGE_LOG", False, "Also emit one JSON line per usage event on the "
            "`analytics.usage` logger.", _as_bool, privacy=True),
    Setting("ANALYTICS_TIMEZONE", "UTC", "The sites' time zone (IANA name such as "
            "`Europe/Berlin`): the days and months of the daily and monthly rollups, the Stats "
            "API and the dashboard.", _as_timezone),
    Setting("ANALYTICS_DASHBOARD_TOKEN", "", "Turns on the dashboard and the Stats API: the "
            "bearer token (and login) for them, at least 32 characters. Empty: both answer 404.",
            _token, secret=True),
)

# Read by the standalone server and `make run` only (not Flask config): documented in a table too.
SERVER_SETTINGS: tuple[Setting, ...] = (
    Setting("INFLUXDB_V2_URL", "", "InfluxDB's URL, as influxdb-client names it (`make run`: "
            "its own influxd unless all three INFLUXDB_V2_* are set)."),
    Setting("INFLUXDB_V2_ORG", "", "InfluxDB organisation."),
    Setting("INFLUXDB_V2_TOKEN", "", "InfluxDB token: write to the buckets, manage tasks.",
            secret=True),
    Setting("ANALYTICS_BIND", "127.0.0.1:8000", "gunicorn's address."),
    Setting("ANALYTICS_WORKERS", "2", "gunicorn worker processes."),
    Setting("ANALYTICS_THREADS", "1", "Threads per worker (more than 1: gthread workers)."),
    Setting("ANALYTICS_ACCESS_LOG", "-", "gunicorn's access log (no IP address, no User-Agent)."),
    Setting("ANALYTICS_LOG_LEVEL", "info", "gunicorn's log level."),
    Setting("FORWARDED_ALLOW_IPS", "127.0.0.1", "Proxies gunicorn trusts for the scheme."),
    Setting("ANALYTICS_DEMO", "", "`1`: serve the demo page at `/` (`make run` sets it)."),
    Setting("ANALYTICS_DEMO_DATA", "1", "`make run`: `0` skips filling `demo.test` with demo "
            "traffic."),
    Setting("ANALYTICS_NGINX", "", "`make run`: `1` also starts nginx on :8080 in front."),
)
INFLUX_KEYS = ("INFLUXDB_V2_URL", "INFLUXDB_V2_ORG", "INFLUXDB_V2_TOKEN")


def server_setting(name: str, environ: Mapping[str, str] = os.environ) -> str:
    """A server setting from the environment, or its documented default."""
    setting = next(s for s in SERVER_SETTINGS if s.name == name)
    return environ.get(name) or str(setting.default)


def influx_settings(config: Mapping[str, Any], environ: Mapping[str, str] = os.environ
                    ) -> dict[str, str] | None:
    """INFLUXDB_V2_URL/ORG/TOKEN from the config, else the environment; None unless all three."""
    values = {k: str(config.get(k) or environ.get(k, "")) for k in INFLUX_KEYS}
    return values if all(values.values()) else None


SETTING_NAMES = frozenset(s.name for s in SETTINGS)


@dataclass(frozen=True)
class Config:
    """Parsed, validated settings; read on the hot path, so plain attributes."""

    url_prefix: str
    permitted_domains: tuple[str, ...]
    skip_domains: tuple[str, ...]
    permitted_events: tuple[str, ...]
    agent_extras: tuple[str, ...]
    note_events: tuple[str, ...]
    cors_origins: tuple[str, ...]
    bucket: str
    raw_retention: int
    hourly_retention: int
    trusted_proxies: int
    salt_period: str
    salt_dir: str
    state_dir: str
    spool_dir: str
    spool_max_bytes: int
    host_id: int | None
    slots_per_host: int
    max_buffered: int
    flush_interval: float
    batch_size: int
    respect_dnt: bool
    geoip: bool
    device_lookups_per_minute: int
    max_body: int
    max_tag_values: int
    top_values: int
    max_domains: int
    hmac_secret: str
    max_seen: int
    usage_log: bool
    timezone: str
    dashboard_token: str

    @property
    def writer_slots(self) -> range:
        """The writer slots of this host (clock.host_slots)."""
        from .clock import host_slots

        return host_slots(self.host_id, self.slots_per_host)

    @property
    def set_aside_retention(self) -> int:
        """Lines set aside in the spool are kept as long as raw points, and never more than 30 days."""
        month = 30 * 86400
        return min(self.raw_retention, month) if self.raw_retention else month

    @property
    def extra_events(self) -> frozenset[str]:
        """The event names of the switched-on extras (ANALYTICS_AGENT_EXTRAS)."""
        return frozenset(EXTRA_EVENTS[e] for e in self.agent_extras)

    @property
    def accepted_events(self) -> frozenset[str]:
        """Event names /event accepts: the permitted ones and those of the switched-on extras."""
        return frozenset(self.permitted_events) | self.extra_events

    @property
    def rollup_buckets(self) -> dict[str, str]:
        return {"1h": f"{self.bucket}_1h", "1d": f"{self.bucket}_1d", "1mo": f"{self.bucket}_1mo"}


def _attr(name: str) -> str:
    return name.removeprefix("ANALYTICS_").lower()


def apply_defaults(config: dict[str, Any]) -> None:
    for setting in SETTINGS:
        config.setdefault(setting.name, setting.default)


def from_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The settings (and INFLUXDB_V2_*) present in the environment, for create_app()."""
    keys = SETTING_NAMES | set(INFLUX_KEYS)
    return {k: v for k, v in environ.items() if k in keys}


@dataclass(frozen=True)
class InfluxTarget:
    """Where points go: InfluxDB's URL, organisation, token and the raw bucket."""

    url: str
    org: str
    token: str
    bucket: str


def influx_target(config: Mapping[str, Any], bucket: str) -> InfluxTarget:
    """Where to write, from INFLUXDB_V2_* (config keys first, then the environment)."""
    values = influx_settings(config)
    if values is None:
        missing = [k for k in INFLUX_KEYS if not (config.get(k) or os.environ.get(k))]
        raise ConfigError(f"{', '.join(missing)} not set: expected where InfluxDB 2 is "
                          "(URL, organisation and token)")
    return InfluxTarget(values["INFLUXDB_V2_URL"], values["INFLUXDB_V2_ORG"],
                        values["INFLUXDB_V2_TOKEN"], bucket)


def _shown(setting: Setting, raw: Any) -> str:
    return "(hidden)" if setting.secret else repr(raw)


def load(config: Mapping[str, Any]) -> Config:
    """Parse every setting; raise ConfigError naming the first bad one, its value (unless it is
    a secret) and what is expected: one line, fit for a start-up error."""
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = config.get(setting.name, setting.default)
        try:
            values[_attr(setting.name)] = setting.parse(raw)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{setting.name}={_shown(setting, raw)}: {err}") from None
    state = values["state_dir"] or safefs.default_state_dir()
    values["state_dir"] = state
    values["salt_dir"] = values["salt_dir"] or os.path.join(state, "salts")
    values["spool_dir"] = values["spool_dir"] or os.path.join(state, "spool")
    values["url_prefix"] = "/" + values["url_prefix"].strip("/") if values["url_prefix"] else ""
    cfg = Config(**values)
    _validate(cfg)
    return cfg


def check_state_dirs(cfg: Config) -> None:
    """Create the state, salt and spool folders (0700) and check everything in them belongs to
    this user alone (safefs): the first problem is one line naming its setting."""
    done: list[str] = []
    for name, path in (("ANALYTICS_STATE_DIR", cfg.state_dir), ("ANALYTICS_SALT_DIR", cfg.salt_dir),
                       ("ANALYTICS_SPOOL_DIR", cfg.spool_dir)):
        problem = safefs.make_private_dir(path)
        if problem:
            raise ConfigError(f"{name}={path!r}: the folder {problem}; expected a folder that only "
                              "the collector's user owns and can write (mode 0700)")
        if any(os.path.commonpath([path, d]) == d for d in done):
            continue  # inside a folder checked already
        bad, problem = safefs.tree_problem(path)
        if bad:
            raise ConfigError(f"{name}={path!r}: {bad} {problem}; expected only files and folders "
                              "of the collector's user that no one else can write, and no "
                              "symbolic links")
        done.append(path)


def _validate(cfg: Config) -> None:
    """Checks across settings; each names the one setting to change."""
    if cfg.salt_period == "month" and 0 < cfg.raw_retention < 32 * 86400:
        raise ConfigError(
            f"ANALYTICS_RAW_RETENTION={cfg.raw_retention // 86400}d: expected at least 32d with "
            "ANALYTICS_SALT_PERIOD=month, so the monthly task still sees the whole month")
    if cfg.host_id is not None and (cfg.host_id + 1) * cfg.slots_per_host > 1000:
        last = 1000 // cfg.slots_per_host - 1
        raise ConfigError(f"ANALYTICS_HOST_ID={cfg.host_id}: expected 0 to {last} with "
                          f"ANALYTICS_SLOTS_PER_HOST={cfg.slots_per_host} (1,000 writer slots in all)")
    unknown = sorted(set(cfg.note_events) - set(cfg.permitted_events))
    if unknown:
        raise ConfigError(f"ANALYTICS_NOTE_EVENTS={','.join(cfg.note_events)!r}: expected events "
                          f"of ANALYTICS_PERMITTED_EVENTS; not permitted: {', '.join(unknown)}")


CONFIG_FIELDS = tuple(f.name for f in fields(Config))
