"""Turn the User-Agent, referrer and IP into coarse labels, with maintained libraries.

Why libraries: bot lists and UA regexes go stale within months; `crawler-user-agents` and
`ua-parser` are kept current by others. Results are cached per UA string in process memory only.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import crawleruseragents
from ua_parser import parse as parse_ua

from .privacy import truncate_ip

PLATFORM_FAMILIES = (
    ("iphone", "ios"), ("ipad", "ios"), ("ipod", "ios"), ("android", "android"),
    ("linux arm", "android"), ("win", "windows"), ("mac", "macos"), ("cros", "chromeos"),
    ("linux", "linux"), ("freebsd", "bsd"), ("openbsd", "bsd"),
)
MOBILE_OS = {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS"}


class Agent(NamedTuple):
    browser: str
    os: str
    device: str
    bot: bool


MAX_AGENT = 512  # longer User-Agents are read up to here: real ones are shorter, names come first
AGENT_CACHE = 4096  # at most 4,096 x 512 characters of attacker-chosen strings in memory


def describe_agent(user_agent: str) -> Agent:
    """Browser family, OS family, device class and whether it is a known bot."""
    return _describe(user_agent[:MAX_AGENT])


@lru_cache(maxsize=AGENT_CACHE)
def _describe(user_agent: str) -> Agent:
    if not user_agent.strip() or crawleruseragents.is_crawler(user_agent):
        return Agent("bot", "bot", "bot", True)
    result = parse_ua(user_agent)
    browser = result.user_agent.family if result.user_agent else "Other"
    os_family = result.os.family if result.os else "Other"
    return Agent(browser, os_family, _device_class(user_agent, os_family, result.device), False)


def _device_class(user_agent: str, os_family: str, device: Any) -> str:
    family = (device.family if device else "") or ""
    lowered = user_agent.lower()
    if "ipad" in lowered or "tablet" in lowered or family.lower().startswith(("ipad", "kindle")):
        return "tablet"
    if os_family == "Android" and "mobile" not in lowered:
        return "tablet"
    if os_family in MOBILE_OS or "mobile" in lowered:
        return "mobile"
    return "desktop"


def platform_family(platform: str) -> str:
    """navigator.platform ('Win32', 'Linux x86_64', 'iPhone') to a fixed, small vocabulary."""
    lowered = platform.lower()
    if not lowered:
        return "unknown"
    for needle, family in PLATFORM_FAMILIES:
        if needle in lowered:
            return family
    return "other"


def referrer_source(referrer: str, domain: str) -> str:
    """The referring host without `www.`; `direct` when none, `internal` for the same site."""
    if not referrer:
        return "direct"
    try:
        host = (urlsplit(referrer.strip()).hostname or "").rstrip(".")
    except ValueError:
        return "direct"
    if not host:
        return "direct"
    host = host.removeprefix("www.")
    if host == domain.removeprefix("www."):
        return "internal"
    return host[:100]


class CountryLookup:
    """Country of a truncated IP from geoip2fast's offline database, loaded on first use."""

    def __init__(self) -> None:
        self._db: Any = None
        self._lock = threading.Lock()

    def __call__(self, ip: str) -> str:
        network = truncate_ip(ip)
        if not network:
            return "unknown"
        if self._db is None:
            with self._lock:
                if self._db is None:
                    from geoip2fast import GeoIP2Fast

                    self._db = GeoIP2Fast(verbose=False)
        code = str(self._db.lookup(network).country_code or "")
        return code if len(code) == 2 and code.isalpha() else "unknown"
