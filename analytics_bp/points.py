"""The InfluxDB schema: validated beacons and counters to line protocol with unique timestamps.

Why hand-written line protocol: it is the wire format, it is 10x cheaper than building Point
objects on the beacon hot path, and it keeps `influxdb_client` out of everything but influx.py.
docs/schema.md documents every measurement, tag and field written here; keep both in step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol

_TAG_ESCAPE = re.compile(r"([,= ])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TAG_SPECIAL = re.compile(r"[,= \\\x00-\x1f\x7f]")
_STR_SPECIAL = re.compile(r'["\\\x00-\x1f\x7f]')
_SURROGATE = re.compile("[\ud800-\udfff]")

FieldValue = str | int | float | bool


def valid_text(value: str) -> str:
    """`value` with any lone surrogate replaced by U+FFFD, so UTF-8 can always encode it.

    Why: the server-side usage API takes strings from the host app, which may have come from
    anywhere; a string that cannot be encoded must cost its own odd character, never a commit.
    """
    if value.isascii():
        return value
    return _SURROGATE.sub("\ufffd", value)


def escape_tag(value: str) -> str:
    """Tag values: escape `,` `=` and space; never empty, no backslash (it would escape the
    delimiter after a trailing one). Most values need nothing: one regex search decides."""
    if value and _TAG_SPECIAL.search(value) is None:
        return value
    value = _CONTROL.sub("", value).replace("\\", "/")
    return _TAG_ESCAPE.sub(r"\\\1", value) if value else "(none)"


def escape_measurement(value: str) -> str:
    return value.replace(",", r"\,").replace(" ", r"\ ")


def format_field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    if _STR_SPECIAL.search(value) is None:
        return f'"{value}"'
    text = _CONTROL.sub(" ", value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def line(
    measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], ts_ns: int
) -> str:
    """One line of line protocol; tags sorted by key (InfluxDB's preferred order). Keys are
    never escaped: they are this package's identifiers or validated usage field names."""
    tag_part = "".join(f",{k}={escape_tag(v)}" for k, v in sorted(tags.items()))
    field_part = ",".join(f"{k}={format_field(v)}" for k, v in fields.items())
    return f"{escape_measurement(measurement)}{tag_part} {field_part} {ts_ns}"


class Clock(Protocol):
    """Where timestamps come from (clock.UniqueClock: unique per writer slot)."""

    def next_ns(self) -> int: ...


CounterKey = tuple[str, tuple[tuple[str, str], ...]]  # (measurement, tags)
