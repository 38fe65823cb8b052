"""One beacon from raw request parts to a line in the sink; no Flask here.

Why separate from views.py: the whole policy (size, validation, domains, origin, events, DNT/GPC,
bots, privacy, enrichment, cardinality) is testable and benchmarkable without a request context,
and the view stays a thin adapter. The raw IP and User-Agent are arguments of `handle()` and go no
further than privacy.py/enrich.py: nothing returned or written can hold them.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import beacons, enrich, privacy, safefs
from .agents import Agent, AgentJudge
from .beacons import Beacon, BeaconError, Reason
from .cardinality import TagGuard
from .points import FieldValue
from .schema import raw_line
from .settings import Config
from .writer import Writer

TEXT_TYPES = ("application/json", "text/plain", "")
LINK_EVENTS = frozenset({"outbound", "download"})  # events of the agent's extras about a link


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    reason: str = ""
    stored: bool = False


ACCEPTED = Outcome(204, stored=True)
IGNORED = Outcome(204)
SPOOL_FULL = Outcome(503, "collector busy, retry later")
STATE_REFUSED = Outcome(503, "collector state refused, see its log")
log = logging.getLogger("analytics.collector")
FIRST_REFUSALS_LOGGED = 1000


@dataclass(frozen=True, slots=True)
class RequestParts:
    """What the view hands over: the body and the few headers the policy needs."""

    body: bytes
    content_type: str
    origin: str | None
    remote_addr: str | None
    forwarded_for: str | None
    user_agent: str
    dnt: str | None
    gpc: str | None
    content_encoding: str = ""


def acceptable_content_type(value: str) -> bool:
    """JSON or plain text (or none, as sendBeacon may send), read as UTF-8: a charset parameter
    naming anything else is refused rather than misread."""
    mime, _, params = value.partition(";")
    if mime.strip().lower() not in TEXT_TYPES:
        return False
    for param in params.split(";"):
        key, _, charset = param.partition("=")
        if key.strip().lower() == "charset" and charset.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


class Collector:
    def __init__(
        self,
        config: Config,
        sink: Callable[[], Writer],
        salts: privacy.SaltStore,
        guard: TagGuard,
        country: Callable[[str], str] | None = None,
    ) -> None:
        self.cfg = config
        self._sink = sink
        self.salts = salts
        self.guard = guard
        self.country = country or (lambda ip: "unknown")
        self.agents = AgentJudge(config.device_lookups_per_minute)
        self._events = config.accepted_events
        self._link_events = config.extra_events & LINK_EVENTS
        self._engagement = beacons.ENGAGEMENT in config.extra_events
        self._note_events = frozenset(config.note_events)
        self.rejections: Counter[str] = Counter()  # this process's refusals by reason (/health)
        self._refusals_logged: set[tuple[str, str]] = set()
        self._refusal_lock = threading.Lock()

    def handle(self, kind: str, parts: RequestParts) -> Outcome:
        try:
            return self._handle(kind, parts)
        except BeaconError as err:
            self._count_rejection(err.reason)
            self._log_first_refusal(err)
            status = 413 if err.reason is Reason.TOO_LARGE else 400
            return Outcome(status, str(err))
        except safefs.UnsafeState as err:  # a link or a stranger's file in the state: not followed
            log.error("state file %s %s", err.filename, err.strerror)
            return STATE_REFUSED

    def _handle(self, kind: str, parts: RequestParts) -> Outcome:
        if len(parts.body) > self.cfg.max_body:
            raise BeaconError(Reason.TOO_LARGE)
        if not acceptable_content_type(parts.content_type):
            raise BeaconError(Reason.BAD_CONTENT_TYPE)
        if parts.content_encoding.strip().lower() not in ("", "identity"):
            raise BeaconError(Reason.BAD_ENCODING)
        if self.cfg.respect_dnt and privacy.wants_no_tracking(parts.dnt, parts.gpc):
            return IGNORED
        beacon = beacons.parse(parts.body, kind, self._engagement)
        if beacons.domain_matches(beacon.domain, self.cfg.skip_domains):
            return IGNORED
        try:
            self._check_policy(beacon, parts.origin)
            link = self._link(beacon) if beacon.event in self._link_events else None
        except BeaconError as err:
            err.domain = beacon.domain
            raise
        agent = self.agents.describe(parts.user_agent)
        if agent.bot:
            return IGNORED
        sink = self._sink()
        if not sink.accepting:
            return SPOOL_FULL
        ip = privacy.client_ip(parts.remote_addr, parts.forwarded_for, self.cfg.trusted_proxies)
        salt = self.salts.current()
        # engaged time counts pageviews, not visitors: no visitor hash is made for it
        visitor = "" if beacon.engaged is not None else privacy.visitor_hash(
            salt, beacon.domain, ip, parts.user_agent)
        session = privacy.session_hash(salt, beacon.domain, beacon.sess_id) if beacon.sess_id else ""
        country = self.country(ip) if self.cfg.geoip else "unknown"
        sink.write(self._line(beacon, agent, country, visitor, session, sink.clock.next_ns(), link))
        return ACCEPTED

    def _check_policy(self, beacon: Beacon, origin: str | None) -> None:
        if not beacons.domain_matches(beacon.domain, self.cfg.permitted_domains):
            raise BeaconError(Reason.DOMAIN_NOT_PERMITTED)
        if origin is not None:
            try:
                origin_host = (urlsplit(origin).hostname or "").rstrip(".")
            except ValueError:
                origin_host = ""
            if origin_host != beacon.domain:
                raise BeaconError(Reason.ORIGIN_MISMATCH)
        if beacon.kind == "event" and beacon.event not in self._events:
            raise BeaconError(Reason.EVENT_NOT_PERMITTED)

    def _count_rejection(self, reason: Reason) -> None:
        with self._refusal_lock:
            self.rejections[reason.code] += 1
        try:
            sink = self._sink()
        except Exception:
            return
        sink.add_count(("rejected", (("reason", reason.code),)))

    def _log_first_refusal(self, err: BeaconError) -> None:
        """The first refusal per reason and domain, at info: a new site owner sees why the first
        visits are missing (`domain not permitted: www.example.com`), a flood costs one line per
        kind (at most FIRST_REFUSALS_LOGGED kinds per process)."""
        key = (err.reason.code, err.domain)
        with self._refusal_lock:
            if key in self._refusals_logged or len(self._refusals_logged) >= FIRST_REFUSALS_LOGGED:
                return
            self._refusals_logged.add(key)
        hint = ""
        if err.reason is Reason.DOMAIN_NOT_PERMITTED:
            hint = (f" (ANALYTICS_PERMITTED_DOMAINS is {','.join(self.cfg.permitted_domains)}; a "
                    "subdomain such as www. needs its own entry or a *. pattern)")
        log.info("refused beacon, the first of its kind: %s: %s%s", err, err.domain or "-", hint)

    def _line(self, beacon: Beacon, agent: Agent, country: str, visitor: str, session: str,
              ts: int, link: tuple[str, str, str] | None = None) -> str:
        # The domain is a tag, so it is bounded here (ANALYTICS_MAX_DOMAINS); every value below
        # is a field of the raw point (schema.MEASUREMENTS), kept as sent: the rollup tasks
        # choose which become tags, by distinct visitors (docs/schema.md, "Series bounds").
        domain = self.guard.admit("*", "domain", beacon.domain, self.cfg.max_domains)
        values: dict[str, FieldValue] = {
            "domain": domain,
            "page": beacon.page,
            "browser": agent.browser,
            "os": agent.os,
            "device": agent.device,
            "country": country,
            "timezone": "unknown" if beacon.timezone is None else str(beacon.timezone),
            "platform": enrich.platform_family(beacon.platform),
        }
        if beacon.engaged is not None:  # the engagement extra: its own measurement, no count
            values.update(sess_id=session, seconds=beacon.engaged, pageview=beacon.pages or 1)
            return raw_line("engagement", values, ts)
        values.update(count=1, visitor=visitor)
        if session:
            values["sess_id"] = session
        if beacon.kind == "pageview":
            values["source"] = enrich.referrer_source(beacon.referrer, beacon.domain)
            values.update(beacon.utm)
            values["pages"] = beacon.pages or 1
            if beacon.load_ms is not None:
                values["load_ms"] = beacon.load_ms
            return raw_line("pageview", values, ts)
        values.update(event=beacon.event, note=beacon.note)
        if link is not None:
            key, values[key], values["note"] = link
        elif beacon.event in self._note_events:
            values["label"] = beacon.note or "(none)"
        return raw_line("event", values, ts)

    @staticmethod
    def _link(beacon: Beacon) -> tuple[str, str, str]:
        """(key, its value, note) of an outbound click (`destination`: the host; note: host and
        path) or a download (`file`: the path, with its host when it is on another site).
        Checked with the policy: a link that is not one is refused, not stored."""
        host, path = beacons.link_target(beacon.note)
        if beacon.event == "outbound":
            if not host or host == beacon.domain:
                raise BeaconError(Reason.BAD_FIELD, "note")
            return "destination", host, host + path
        if not host and path == "/":
            raise BeaconError(Reason.BAD_FIELD, "note")
        file = path if host in ("", beacon.domain) else host + path
        return "file", file, file
