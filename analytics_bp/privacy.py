"""Everything that touches personal data: client IP, salts, visitor hashes, pseudonyms, DNT/GPC.

Why one module: the raw IP and User-Agent enter here (and in enrich.py) and leave only as a salted
hash, a truncated network or a coarse label. The salt is random, shared by the workers of one host
through files in ANALYTICS_SALT_DIR, and deleted once its period is over, so nothing left on disk or
in InfluxDB can recompute an old period's visitor hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Protocol

from . import periods, safefs

SALT_BYTES = 32


class TimeSource(Protocol):
    """Anything with `time()` (the `time` module, or a test's clock)."""

    def time(self) -> float: ...


SALT_GRACE_SECONDS = 120
VISITOR_HEX = 16


def client_ip(remote_addr: str | None, forwarded_for: str | None, trusted_proxies: int) -> str:
    """The address of the client: REMOTE_ADDR, or the X-Forwarded-For entry added by the
    outermost of `trusted_proxies` proxies (entries to its left are client-supplied, untrusted)."""
    if trusted_proxies > 0 and forwarded_for:
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        if len(hops) >= trusted_proxies:
            return hops[-trusted_proxies]
    return remote_addr or ""


def truncate_ip(address: str) -> str:
    """Clear the low 8 bits of IPv4 and the low 80 bits of IPv6 (seed 001's anonymisation)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return ""
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def wants_no_tracking(dnt: str | None, gpc: str | None) -> bool:
    return (dnt or "").strip() == "1" or (gpc or "").strip() == "1"


class SaltStore:
    """The current period's random salt, created atomically by whichever worker needs it first.

    File `salt-<period>` holds raw random bytes (mode 0600), created atomically by whichever
    worker needs it first (safefs.read_or_create_secret). Salts of earlier periods are deleted
    SALT_GRACE_SECONDS after the new period starts. A salt
    file that is a symbolic link or not this user's own is refused (safefs.UnsafeState), never
    used: a planted salt would let its planter recover visitors' IPs from their hashes.
    """

    def __init__(self, directory: str, period: str, clock: TimeSource | ModuleType = time) -> None:
        self.dir = Path(directory)
        self.period = period
        self._clock = clock
        self._lock = threading.Lock()
        self._key = ""
        self._salt = b""
        self._cleaned_for = ""
        # Hot path: between these instants the salt is known and old salts are already deleted.
        self._fast_from = 0.0
        self._fast_until = 0.0

    def _now(self) -> float:
        return float(self._clock.time())

    def current(self) -> bytes:
        now = self._now()
        if self._fast_from <= now < self._fast_until:
            return self._salt
        key = periods.key(self.period, now)
        with self._lock:
            if key != self._key:
                self._salt = self._load_or_create(key)
                self._key = key
            if self._cleaned_for != key and now >= periods.start(self.period, now) + SALT_GRACE_SECONDS:
                self.delete_old_salts(key)
                self._cleaned_for = key
            if self._cleaned_for == key:
                self._fast_from = periods.start(self.period, now)
                self._fast_until = periods.end(self.period, now)
            return self._salt

    def _load_or_create(self, key: str) -> bytes:
        safefs.private_dirs(self.dir)
        return safefs.read_or_create_secret(self.dir / f"salt-{key}", SALT_BYTES)

    def delete_old_salts(self, keep: str) -> None:
        for path in self.dir.glob("salt-*"):
            if path.name != f"salt-{keep}":
                path.unlink(missing_ok=True)


def visitor_hash(salt: bytes, domain: str, ip: str, user_agent: str) -> str:
    """Keyed BLAKE2b of (domain, IP, UA): stable for one visitor within one salt period only."""
    digest = hashlib.blake2b(
        f"{domain}\x00{ip}\x00{user_agent}".encode(errors="replace"),
        key=salt,
        digest_size=VISITOR_HEX // 2,
    )
    return digest.hexdigest()


def session_hash(salt: bytes, domain: str, sess_id: str) -> str:
    """The agent's per-tab session ID as stored: keyed by the period's salt like the visitor hash,
    so a tab open across the end of a period yields two unrelated values, and nothing stored links
    one period's visitor hashes to the next one's."""
    digest = hashlib.blake2b(f"sess\x00{domain}\x00{sess_id}".encode(errors="replace"), key=salt,
                             digest_size=VISITOR_HEX // 2)
    return digest.hexdigest()


class Pseudonymizer:
    """One-way, consistent HMAC-SHA256 pseudonyms of user IDs (seed 000)."""

    def __init__(self, secret: str) -> None:
        if not secret.strip() or secret.strip().lower() == "none":
            raise ValueError(
                "ANALYTICS_HMAC_SECRET is empty or 'none': set a long random secret to use the "
                "usage API (user IDs are pseudonymised with it)"
            )
        self._key = secret.encode()

    def __call__(self, user_id: str | None) -> str:
        value = "unknown" if user_id is None else str(user_id)
        # surrogatepass: a lone surrogate (possible in a str) gets its own pseudonym, never an error
        return hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
