"""Parse and validate one raw beacon body into a frozen `Beacon`; no Flask, no I/O.

Why strict: every field a visitor sends is attacker-controlled and may end up as an InfluxDB tag,
so a beacon is either fully understood and bounded here, or refused with a short reason. Reasons
are a fixed vocabulary (`Reason`), never an echo of the input, so they are safe to log, to return
in a header and to store as a tag on the rejection counter.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, unquote

MAX_PAGE_INPUT = 2048
MAX_PAGE = 200
MAX_REFERRER = 2048
MAX_PLATFORM = 64
MAX_SESS_ID = 64
MAX_EVENT = 64
MAX_NOTE = 256
MAX_UTM = 64
MAX_TZ_MINUTES = 14 * 60
MAX_PAGES = 100_000
MAX_LOAD_MS = 600_000
MAX_ENGAGED = 3600  # engaged seconds kept per pageview: longer is capped to this
MAX_ENGAGED_INPUT = 86_400  # engaged seconds accepted at all (a day); more is refused
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign")

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
_SESS_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EVENT = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SLASHES = re.compile(r"/{2,}")
# A JSON escape of a UTF-16 surrogate: only bodies containing one can decode to a lone surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
KNOWN_FIELDS = frozenset({"domain", "page", "referrer", "timezone", "platform", "sess_id", "pages",
                          "load_ms", "event", "note", "engaged"})
ENGAGEMENT = "engagement"  # the event the agent sends with a pageview's engaged seconds


class Reason(StrEnum):
    """Why a beacon was refused. The value is the short text sent back to the client."""

    TOO_LARGE = "body too large"
    BAD_CONTENT_TYPE = "content type must be application/json or text/plain"
    BAD_ENCODING = "content encoding not supported"
    BAD_JSON = "body is not a JSON object"
    MISSING_FIELD = "missing field"
    BAD_FIELD = "bad field"
    DOMAIN_NOT_PERMITTED = "domain not permitted"
    ORIGIN_MISMATCH = "origin does not match domain"
    EVENT_NOT_PERMITTED = "event not permitted"

    @property
    def code(self) -> str:
        return self.name.lower()


class BeaconError(ValueError):
    """A refused beacon: `reason` is from the fixed vocabulary, `field` names our field, if any."""

    def __init__(self, reason: Reason, field: str = "") -> None:
        super().__init__(f"{reason.value}: {field}" if field else reason.value)
        self.reason = reason
        self.field = field
        self.domain = ""  # the beacon's domain, once parsing got that far (for the log)


@dataclass(frozen=True, slots=True)
class Beacon:
    """One validated beacon. Every string is bounded; no IP or User-Agent lives here."""

    kind: str
    domain: str
    page: str
    referrer: str
    timezone: int | None
    platform: str
    sess_id: str
    pages: int | None
    load_ms: int | None
    event: str
    note: str
    utm: tuple[tuple[str, str], ...]
    engaged: int | None = None  # engagement events: seconds the page was visible, capped


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BeaconError(Reason.BAD_JSON, "duplicate key")
        out[key] = value
    return out


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BeaconError(Reason.BAD_FIELD, "number out of range")
    return value


def _reject_constant(_: str) -> None:
    raise BeaconError(Reason.BAD_JSON, "NaN or Infinity")


def decode_json(body: bytes) -> dict[str, Any]:
    """Strict JSON: an object, no duplicate keys, no NaN/Infinity, no pathological nesting."""
    try:
        data = json.loads(
            body.removeprefix(b"\xef\xbb\xbf").decode("utf-8"),  # a UTF-8 BOM may be ignored (RFC 8259)
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except BeaconError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BeaconError(Reason.BAD_JSON) from None
    if not isinstance(data, dict):
        raise BeaconError(Reason.BAD_JSON)
    if _SURROGATE_ESCAPE.search(body):
        _refuse_unencodable(data)
    return data


def encodable(text: str) -> bool:
    """True when `text` is valid Unicode (no lone surrogate), so UTF-8 can encode it."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_unencodable(data: dict[str, Any]) -> None:
    """Refuse any key or string value, at any depth, that UTF-8 cannot encode.

    Why: JSON allows `\\ud800` on its own; such a string cannot be written to a tag registry, the
    spool or a log line. Only our own field names are echoed in the reason, never the input.
    """
    for key, value in data.items():
        stack: list[Any] = [key, value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                if not encodable(item):
                    name = key if key in KNOWN_FIELDS and encodable(key) else ""
                    raise BeaconError(Reason.BAD_FIELD, name or "string is not valid unicode")
            elif isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)


def clean_text(value: str, limit: int) -> str:
    """Drop control characters and cap the length (after cleaning)."""
    return _CONTROL.sub("", value).strip()[:limit]


def _string(data: dict[str, Any], key: str, limit: int, required: bool = False) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise BeaconError(Reason.MISSING_FIELD, key)
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise BeaconError(Reason.BAD_FIELD, key)
    return value


def _integer(data: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BeaconError(Reason.BAD_FIELD, key)
    if not low <= value <= high:
        raise BeaconError(Reason.BAD_FIELD, key)
    return round(value)


def normalise_domain(raw: str) -> str:
    domain = raw.strip().lower().rstrip(".")
    if not _HOST.match(domain):
        raise BeaconError(Reason.BAD_FIELD, "domain")
    return domain


def normalise_page(raw: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A path without query or fragment, safely decoded and capped, plus the UTM parameters.

    Accepts a path (`/a?b#c`) or a full URL; anything else becomes a path by prefixing `/`.
    """
    text = raw.split("#", 1)[0]
    if "://" in text.split("?", 1)[0]:
        after_scheme = text.split("://", 1)[1]
        slash = after_scheme.find("/")
        text = after_scheme[slash:] if slash >= 0 else "/"
    path, _, query = text.partition("?")
    path = _CONTROL.sub("", unquote(path, errors="replace"))
    path = _SLASHES.sub("/", "/" + path.lstrip("/"))[:MAX_PAGE]
    utm = tuple(
        (key, value)
        for key, value in (
            (k, clean_text(v, MAX_UTM).lower())
            for k, v in parse_qsl(query, keep_blank_values=False)[:50]
            if k in UTM_KEYS
        )
        if value
    )
    return path, tuple(dict(utm).items())


def parse(body: bytes, kind: str, engagement: bool = False) -> Beacon:
    """Validate a pageview or event body. Unknown fields are ignored. With `engagement` (the
    extra is switched on), the event `engagement` must carry its seconds and pageview number;
    without it, `engagement` is a name like any other."""
    data = decode_json(body)
    domain = normalise_domain(_string(data, "domain", 253, required=True))
    try:
        return _parse_fields(data, domain, kind, engagement)
    except BeaconError as err:
        err.domain = domain
        raise


def _parse_fields(data: dict[str, Any], domain: str, kind: str, engagement: bool) -> Beacon:
    page, utm = normalise_page(_string(data, "page", MAX_PAGE_INPUT, required=True))
    sess_id = _string(data, "sess_id", MAX_SESS_ID)
    if sess_id and not _SESS_ID.match(sess_id):
        raise BeaconError(Reason.BAD_FIELD, "sess_id")
    event = note = ""
    engaged = None
    pages = _integer(data, "pages", 1, MAX_PAGES) if kind == "pageview" else None
    if kind == "event":
        event = _string(data, "event", MAX_EVENT, required=True).strip().lower()
        if not _EVENT.match(event):
            raise BeaconError(Reason.BAD_FIELD, "event")
        note = clean_text(_string(data, "note", MAX_NOTE * 4), MAX_NOTE)
        if engagement and event == ENGAGEMENT:
            engaged, pages = _engagement(data)
    return Beacon(
        kind=kind,
        domain=domain,
        page=page,
        referrer=_string(data, "referrer", MAX_REFERRER),
        timezone=_integer(data, "timezone", -MAX_TZ_MINUTES, MAX_TZ_MINUTES),
        platform=clean_text(_string(data, "platform", MAX_PLATFORM * 4), MAX_PLATFORM),
        sess_id=sess_id,
        pages=pages,
        load_ms=_integer(data, "load_ms", 0, MAX_LOAD_MS) if kind == "pageview" else None,
        event=event,
        note=note,
        utm=utm,
        engaged=engaged,
    )


def _engagement(data: dict[str, Any]) -> tuple[int, int]:
    """An engagement event's seconds (capped at MAX_ENGAGED) and its pageview's number."""
    engaged = _integer(data, "engaged", 0, MAX_ENGAGED_INPUT)
    if engaged is None:
        raise BeaconError(Reason.MISSING_FIELD, "engaged")
    pages = _integer(data, "pages", 1, MAX_PAGES)
    if pages is None:
        raise BeaconError(Reason.MISSING_FIELD, "pages")
    if not data.get("sess_id"):  # a pageview is its session and its number in it
        raise BeaconError(Reason.MISSING_FIELD, "sess_id")
    return min(engaged, MAX_ENGAGED), pages


def link_target(note: str) -> tuple[str, str]:
    """(host, path) of a link the agent's extras report as `host/path` (or `/path` on the site's
    own host). The query and fragment are dropped here too, whatever the client sent; the path is
    decoded and capped like a page's. A host that is not a host name is refused."""
    text = note.split("#", 1)[0].split("?", 1)[0].strip()
    host, slash, path = text.partition("/")
    if host:
        try:
            host = normalise_domain(host)
        except BeaconError:
            raise BeaconError(Reason.BAD_FIELD, "note") from None
    return host, normalise_page(slash + path)[0]


def domain_matches(domain: str, patterns: tuple[str, ...]) -> bool:
    """Exact host, or `*.example.com` for any subdomain (not the apex itself)."""
    for pattern in patterns:
        if pattern.startswith("*."):
            if domain.endswith(pattern[1:]):
                return True
        elif domain == pattern:
            return True
    return False
