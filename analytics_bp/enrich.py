"""Turn the platform, referrer and IP into coarse labels (the User-Agent is judged in agents.py).

Why libraries: lists go stale within months; geoip2fast's offline database is kept current by others.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from .privacy import truncate_ip

PLATFORM_FAMILIES = (
    ("iphone", "ios"), ("ipad", "ios"), ("ipod", "ios"), ("android", "android"),
    ("linux arm", "android"), ("win", "windows"), ("mac", "macos"), ("cros", "chromeos"),
    ("linux", "linux"), ("freebsd", "bsd"), ("openbsd", "bsd"),
)


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
