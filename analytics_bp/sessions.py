"""The dashboard's sign-in: sessions the server can end, and throttled failures. No Flask here.

Why server-side: signing out must end the session (a cookie copied before is then worthless), a
token change must end every session, and a leaked cookie must not help anyone guess the token. So
the cookie holds only a random session ID, signed with a random key of the server's own (never
derived from the token, so a cookie is no oracle for it). Per session the server keeps one file,
named by the SHA-256 of the ID, with its expiry and the token's fingerprint (an HMAC of the token
under that key). Sign-out deletes the file; a new token makes every fingerprint stale, and the
store deletes those files when it starts. The files live in the private state folder (safefs),
shared by the workers of a host.

Why a throttle: wrong tokens, at the login form or as a bearer, count against the client (a keyed
hash of its address, in memory only, never stored); past `allowed` failures within `window`
seconds the client gets 429 with Retry-After, whatever it sends, until the oldest failure is
`window` seconds old. Per worker process; the shipped nginx limits sign-in attempts across them.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from . import safefs

KEY_BYTES = 32


class SessionStore:
    def __init__(self, directory: Path, token: str, max_age: int) -> None:
        self.dir = directory / "sessions"
        safefs.private_dirs(self.dir)
        self._key = safefs.read_or_create_secret(directory / "key", KEY_BYTES)
        self._signer = URLSafeTimedSerializer(self._key, salt="analytics-dashboard-session")
        self._fingerprint = hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()
        self.max_age = max_age
        self.prune()

    def create(self) -> str:
        """A new session; returns the cookie's value."""
        sid = secrets.token_urlsafe(32)
        fd = safefs.open_private(self._path(sid), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{int(time.time()) + self.max_age} {self._fingerprint}\n")
        return self._signer.dumps(sid)

    def valid(self, cookie: str) -> bool:
        sid = self._session_id(cookie)
        return sid is not None and self._live(self._path(sid))

    def revoke(self, cookie: str) -> None:
        sid = self._session_id(cookie)
        if sid is not None:
            self._path(sid).unlink(missing_ok=True)

    def prune(self) -> None:
        """Delete expired sessions and those of an earlier token."""
        for path in self.dir.iterdir():
            if not self._live(path):
                path.unlink(missing_ok=True)

    def _session_id(self, cookie: str) -> str | None:
        try:
            sid = self._signer.loads(cookie, max_age=self.max_age)
        except BadSignature:
            return None
        return sid if isinstance(sid, str) else None

    def _path(self, sid: str) -> Path:
        return self.dir / hashlib.sha256(sid.encode()).hexdigest()

    def _live(self, path: Path) -> bool:
        try:
            expires, fingerprint = safefs.read_private(path).decode().split()
            return int(expires) > time.time() and hmac.compare_digest(fingerprint, self._fingerprint)
        except (OSError, ValueError):
            return False


class FailureThrottle:
    """At most `allowed` failures per client within `window` seconds; memory for `clients`."""

    def __init__(self, allowed: int = 10, window: float = 300.0, clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.allowed, self.window, self.clients = allowed, window, clients
        self._clock = clock
        self._key = secrets.token_bytes(16)  # per process: the keyed hashes mean nothing elsewhere
        self._failures: OrderedDict[bytes, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Seconds until `client` may try again; 0 when it may now."""
        now = self._clock()
        with self._lock:
            times = self._recent(self._id(client), now)
            if times is None or len(times) < self.allowed:
                return 0
            return max(1, math.ceil(times[0] + self.window - now))

    def failed(self, client: str) -> None:
        now = self._clock()
        key = self._id(client)
        with self._lock:
            times = self._recent(key, now)
            if times is None:
                times = self._failures[key] = deque(maxlen=self.allowed)
                while len(self._failures) > self.clients:
                    self._failures.popitem(last=False)  # the least recently failing client
            times.append(now)
            self._failures.move_to_end(key)

    def _id(self, client: str) -> bytes:
        return hashlib.blake2b(client.encode(errors="replace"), key=self._key, digest_size=16).digest()

    def _recent(self, key: bytes, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]  # under the lock, just read: it is there
            return None
        return times
