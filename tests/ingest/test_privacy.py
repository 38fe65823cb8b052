"""Privacy helpers: client address, truncation, salts (atomic, rotated, deleted), hashes."""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from analytics_bp import periods, privacy, settings
from analytics_bp.cardinality import TagGuard
from analytics_bp.collector import Collector, RequestParts
from analytics_bp.dev.demo_traffic import LineCapture
from tests.support.web import CHROME_UA


@pytest.mark.parametrize(
    ("remote", "xff", "trusted", "expected"),
    [
        ("10.0.0.1", None, 0, "10.0.0.1"),
        ("10.0.0.1", "1.2.3.4", 0, "10.0.0.1"),
        ("127.0.0.1", "1.2.3.4", 1, "1.2.3.4"),
        ("127.0.0.1", "6.6.6.6, 1.2.3.4", 1, "1.2.3.4"),
        ("127.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.2", 2, "1.2.3.4"),
        ("127.0.0.1", "1.2.3.4", 2, "127.0.0.1"),
    ],
)
def test_client_ip(remote: str, xff: str | None, trusted: int, expected: str) -> None:
    assert privacy.client_ip(remote, xff, trusted) == expected


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("81.2.69.142", "81.2.69.0"),
        ("2001:db8:85a3:1234:5678:8a2e:370:7334", "2001:db8:85a3::"),
        ("not an ip", ""),
    ],
)
def test_truncate_ip(ip: str, expected: str) -> None:
    assert privacy.truncate_ip(ip) == expected


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def time(self) -> float:
        return self.t


DAY1 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def test_salt_is_shared_rotated_and_old_salts_deleted(tmp_path: Path) -> None:
    clock = FakeClock(DAY1 + 3600)
    a = privacy.SaltStore(str(tmp_path), "day", clock)
    b = privacy.SaltStore(str(tmp_path), "day", clock)
    first = a.current()
    assert len(first) == 32 and b.current() == first
    assert (tmp_path / "salt-2026-01-01").stat().st_mode & 0o777 == 0o600
    clock.t = DAY1 + 86400 + 10  # next day, inside the grace window: old salt still on disk
    second = a.current()
    assert second != first
    assert (tmp_path / "salt-2026-01-01").exists()
    clock.t = DAY1 + 86400 + privacy.SALT_GRACE_SECONDS + 1
    assert a.current() == second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["salt-2026-01-02"]
    clock.t = DAY1 + 2 * 86400 - 0.001  # last instant of day 2: the cached salt still applies
    assert a.current() == second
    clock.t = DAY1 + 2 * 86400 + 3600  # day 3, past the grace window: new salt, day 2's deleted
    third = a.current()
    assert third not in (first, second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["salt-2026-01-03"]


def test_period_end_rolls_over_months_and_years() -> None:
    dec = 1_796_083_200.0  # 2026-12-01T00:00:00Z
    assert periods.end("month", dec + 5 * 86400) == 1_798_761_600.0  # 2027-01-01
    assert periods.end("month", DAY1 + 40 * 86400) == 1_772_323_200.0  # 2026-03-01
    assert periods.end("day", DAY1 + 3600) == DAY1 + 86400


def test_month_salt_lasts_the_month(tmp_path: Path) -> None:
    clock = FakeClock(DAY1)
    store = privacy.SaltStore(str(tmp_path), "month", clock)
    salt = store.current()
    clock.t = DAY1 + 20 * 86400
    assert store.current() == salt
    clock.t = DAY1 + 32 * 86400
    assert store.current() != salt


def _salt_in_process(directory: str) -> bytes:
    return privacy.SaltStore(directory, "day").current()


def test_concurrent_processes_agree_on_one_salt(tmp_path: Path) -> None:
    with multiprocessing.get_context("fork").Pool(4) as pool:
        salts = pool.map(_salt_in_process, [str(tmp_path)] * 16)
    assert len(set(salts)) == 1


def test_visitor_hash_depends_on_every_part_and_salt() -> None:
    base = privacy.visitor_hash(b"s" * 32, "example.com", "1.2.3.4", "UA")
    assert len(base) == 16
    assert base == privacy.visitor_hash(b"s" * 32, "example.com", "1.2.3.4", "UA")
    for other in [
        privacy.visitor_hash(b"t" * 32, "example.com", "1.2.3.4", "UA"),
        privacy.visitor_hash(b"s" * 32, "example.org", "1.2.3.4", "UA"),
        privacy.visitor_hash(b"s" * 32, "example.com", "1.2.3.5", "UA"),
        privacy.visitor_hash(b"s" * 32, "example.com", "1.2.3.4", "UA2"),
    ]:
        assert other != base


def test_hmac_pseudonym_vectors() -> None:
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    rfc = privacy.Pseudonymizer("Jefe")
    assert rfc("what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
    pseudo = privacy.Pseudonymizer("your-secret-key")
    assert pseudo("user123") == "7d8264afd9585503b85f5c647775202f301e9a79c0941adadfa58cfc92f3ab5d"
    assert pseudo(None) == hmac.new(b"your-secret-key", b"unknown", hashlib.sha256).hexdigest()
    assert pseudo(None) != pseudo("user123")


@pytest.mark.parametrize("secret", ["", "none", "None", "  "])
def test_missing_secret_fails_closed(secret: str) -> None:
    with pytest.raises(ValueError, match="ANALYTICS_HMAC_SECRET"):
        privacy.Pseudonymizer(secret)


@pytest.mark.parametrize(
    ("dnt", "gpc", "expected"),
    [("1", None, True), (None, "1", True), ("0", "0", False), (None, None, False)],
)
def test_dnt_and_gpc(dnt: str | None, gpc: str | None, expected: bool) -> None:
    assert privacy.wants_no_tracking(dnt, gpc) is expected


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def test_a_tab_open_across_midnight_cannot_be_linked(tmp_path: Path) -> None:
    """The same tab (session ID) and browser, one beacon before and one after the salt changes:
    nothing stored is equal across the boundary, and the session ID is never stored as sent."""
    cfg = settings.load({"ANALYTICS_PERMITTED_DOMAINS": "example.com",
                         "ANALYTICS_STATE_DIR": str(tmp_path)})
    midnight = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
    clock = Clock(midnight - 1)
    lines = LineCapture()  # the demo month's writer that keeps lines
    collector = Collector(cfg, lambda: lines, privacy.SaltStore(cfg.salt_dir, "day", clock),
                          TagGuard(cfg.state_dir, 100))
    body = json.dumps({"domain": "example.com", "page": "/", "sess_id": "tab-1234"}).encode()
    parts = RequestParts(body, "text/plain", None, "203.0.113.5", None, CHROME_UA, None, None)
    assert collector.handle("pageview", parts).status == 204
    clock.now = midnight + 1
    assert collector.handle("pageview", parts).status == 204
    before, after = (dict(re.findall(r'(visitor|sess_id)="([0-9a-f]+)"', text)) for text in lines.lines)
    assert before["sess_id"] != after["sess_id"] and before["visitor"] != after["visitor"]
    assert all("tab-1234" not in text for text in lines.lines)
