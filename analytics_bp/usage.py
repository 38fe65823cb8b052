"""Server-side usage tracking for Flask apps: log_event, count, seen, mark and @track.

Why here, in the same InfluxDB: seeds 000 and 001 describe two trackers (pseudonymised event logs,
and counts / distinct identities / timeline marks); site owners want both beside their page
analytics. Everything is cheap on the hot path: counts aggregate in the sink's memory and reach
InfluxDB with its next group commit; `seen` hashes the identifier with the period salt (deleted
when the period ends) so nothing stored can be linked back to it.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar

from . import periods, privacy, safefs
from .cardinality import TagGuard
from .points import valid_text
from .registry import PeriodRegistry
from .schema import raw_line
from .settings import Config, ConfigError
from .writer import Writer

P = ParamSpec("P")
R = TypeVar("R")
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
RESERVED = {"pseudonym_id", "count", "event", "action", "timestamp", "request_id"}
MAX_STR = 256
usage_log = logging.getLogger("analytics.usage")


def _json_logger() -> logging.Logger:
    """`analytics.usage` emits at INFO whatever the root level, one JSON object per line."""
    if not usage_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        usage_log.addHandler(handler)
    usage_log.setLevel(logging.INFO)
    usage_log.propagate = False
    return usage_log


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _request_id() -> str | None:
    try:
        from flask import g, has_request_context, request
    except ImportError:  # pragma: no cover - flask is a dependency
        return None
    if not has_request_context():
        return None
    rid = getattr(g, "request_id", None) or request.headers.get("X-Request-ID")
    return str(rid)[:64] if rid else None


class Usage:
    """The usage API of one app; needs only its settings, its writer, salts and tag guard."""

    def __init__(self, config: Config, writer: Callable[[], Writer], salts: privacy.SaltStore,
                 guard: TagGuard) -> None:
        cfg = config
        self._writer = writer
        self._salts = salts
        self._guard = guard
        self._pseudonymizer: privacy.Pseudonymizer | None = None
        self._secret_error = ""
        try:
            self._pseudonymizer = privacy.Pseudonymizer(cfg.hmac_secret)
        except ValueError as err:
            self._secret_error = str(err)
        self.seen_registry = PeriodRegistry(Path(cfg.state_dir) / "seen")
        self._max_seen = cfg.max_seen
        self._log = _json_logger() if cfg.usage_log else None
        self._golive_path = Path(cfg.state_dir) / f"golive-{cfg.bucket}"

    def check_secret(self) -> None:
        if self._pseudonymizer is None:
            raise ConfigError(self._secret_error)

    def pseudonym(self, user_id: str | None) -> str:
        if self._pseudonymizer is None:
            raise ConfigError(self._secret_error)  # fail closed: never store a raw user ID
        return self._pseudonymizer(user_id)

    def _action(self, action: str) -> str:
        return self._guard.admit("usage", "action", action[:128])

    def log_event(self, module: str, func: str, user_id: str | None, **fields: Any) -> None:
        pseudonym = self.pseudonym(user_id)
        clean = self._clean_fields(fields)
        action = valid_text(f"{module}.{func}")
        sink = self._writer()
        point_fields: dict[str, str | int | float | bool] = {"count": 1, "pseudonym_id": pseudonym}
        point_fields.update({k: v for k, v in clean.items() if v is not None})
        sink.write(raw_line("usage", {"action": self._action(action), **point_fields},
                            sink.clock.next_ns()))
        if self._log is not None:
            record: dict[str, Any] = {"event": "usage", "action": action, "module": module,
                                      "func": func, "pseudonym_id": pseudonym, **clean,
                                      "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds")}
            rid = _request_id()
            if rid:
                record["request_id"] = rid
            self._log.info(json.dumps(record, separators=(",", ":"), default=str))

    @staticmethod
    def _clean_fields(fields: dict[str, Any]) -> dict[str, str | int | float | bool | None]:
        out: dict[str, str | int | float | bool | None] = {}
        for key, value in fields.items():
            name = snake_case(key)
            if not FIELD_NAME.match(name) or name in RESERVED:
                raise ValueError(f"usage field name {key!r} is not allowed")
            if value is not None and not isinstance(value, str | int | float | bool):
                raise TypeError(f"usage field {key!r} must be str, int, float, bool or None")
            out[name] = valid_text(value[:MAX_STR]) if isinstance(value, str) else value
        return out

    def count(self, event: str, category: str, n: int = 1) -> None:
        guard = self._guard
        event, category = valid_text(event), valid_text(category)
        # The event's values are bounded per admitted category: a caller's categories past the
        # cap share the `(other)` registry instead of opening one each.
        admitted = guard.admit("usage", "category", category[:64])
        tags = (("category", admitted), ("event", guard.admit("usage", f"event:{admitted}", event[:64])))
        self._writer().add_count(("usage_count", tags), n)

    def seen(self, identifier: str, category: str) -> bool:
        """True the first time `identifier` is seen in this salt period (across the host)."""
        salts = self._salts
        cat = self._guard.admit("usage", "seen_category", valid_text(category)[:64])
        salt = salts.current()
        now = time.time()
        digest = privacy.visitor_hash(salt, cat, str(identifier), "seen")
        _, new, distinct = self.seen_registry.add(periods.key(salts.period, now), cat, digest,
                                                  cap=self._max_seen)
        if new:
            sink = self._writer()
            start_ns = int(periods.start(salts.period, now)) * 1_000_000_000
            sink.write(raw_line("usage_seen", {"category": cat, "period": salts.period,
                                               "distinct": distinct}, start_ns))
        elif distinct >= self._max_seen:
            usage_log.warning("seen(%r): ANALYTICS_MAX_SEEN (%d) reached this period; further "
                              "identifiers are not counted", cat, self._max_seen)
        return new

    def mark(self, name: str, category: str = "timeline", writer: Writer | None = None) -> None:
        sink = writer or self._writer()
        category = self._guard.admit("usage", "mark_category", valid_text(category[:64]))
        sink.write(raw_line("mark", {"category": category, "name": valid_text(name[:MAX_STR]),
                                     "count": 1}, sink.clock.next_ns()))

    def mark_golive_once(self, marked_already: Callable[[], bool], writer: Writer) -> bool:
        """Record `golive` once per bucket: the first writer of this host claims it with a local
        file, then asks InfluxDB (`marked_already`) whether any host or earlier state folder
        marked it, so a new state folder or host adds no second mark. When InfluxDB cannot say,
        the claim is dropped and the next start asks again."""
        try:
            safefs.private_dirs(self._golive_path.parent)
            fd = safefs.open_private(self._golive_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            with os.fdopen(fd, "w") as handle:
                handle.write(datetime.now(UTC).isoformat() + "\n")
        except FileExistsError:
            return False
        try:
            if marked_already():
                return False
        except Exception as err:  # InfluxDB unreachable: decide at the next start
            usage_log.info("golive mark not decided (%s): asked again at the next start", err)
            self._golive_path.unlink(missing_ok=True)
            return False
        self.mark("golive", writer=writer)  # the writer just started, never a new one
        return True

    def track(self, action: str) -> TrackDecorator:
        """Decorator: log every call of the function with its duration and whether it raised."""
        return track_with(lambda: self, action)



class TrackDecorator(Protocol):
    """What `track(action)` returns: a decorator that keeps the function's signature."""

    def __call__(self, fn: Callable[P, R], /) -> Callable[P, R]: ...


def track_with(usage: Callable[[], Usage], action: str) -> TrackDecorator:
    """`@track(action)`: the usage API is found when the function is called, not when decorated,
    so the decorator works on functions defined before the app exists."""
    module, _, func = action.rpartition(".")

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            ok = False
            try:
                result = fn(*args, **kwargs)
                ok = True
                return result
            finally:
                elapsed = round((time.perf_counter() - started) * 1000, 3)
                usage().log_event(module or fn.__module__, func or fn.__name__, None,
                                  duration_ms=elapsed, ok=ok)

        return wrapper

    return decorate
