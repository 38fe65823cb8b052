"""Server-side usage API on a real InfluxDB: pseudonyms, JSON log, counts, seen, marks, track."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from analytics_bp import AnalyticsState, ConfigError, create_app
from analytics_bp.usage import Usage
from tests.support.influx import Influx, flush


def ext(app: Any) -> AnalyticsState:
    """The app's usage API, bound to the app (no app context needed)."""
    return app.extensions["analytics"]  # type: ignore[no-any-return]


def rows(influx: Influx, bucket: str, measurement: str) -> list[dict[str, Any]]:
    return influx.query(
        'from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement == m) '
        '|> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value") |> group()',
        b=bucket, m=measurement)


def test_log_event_pseudonymises_and_writes_a_usage_point(make_app: Any, influx: Influx,
                                                           bucket: str) -> None:
    app = make_app()
    analytics = ext(app)
    analytics.log_event(module="document_processor", func="extract_text", user_id="user123",
                        document_type="pdf", page_count=10, processing_time_ms=250.5,
                        success=True, empty=None)
    flush(app)
    [row] = rows(influx, bucket, "usage")
    expected = hmac.new(b"test-secret", b"user123", hashlib.sha256).hexdigest()
    assert analytics.get_pseudonymized_user_id("user123") == expected
    assert (row["action"], row["pseudonym_id"], row["document_type"], row["page_count"],
            row["processing_time_ms"], row["success"], row["count"]) == (
        "document_processor.extract_text", expected, "pdf", 10, 250.5, True, 1)
    assert "empty" not in row
    assert "user123" not in json.dumps(row, default=str)


def test_json_usage_log_whatever_the_root_level(make_app: Any, capsys: Any) -> None:
    logging.getLogger().setLevel(logging.CRITICAL)
    app = make_app(ANALYTICS_USAGE_LOG=True)
    with app.test_request_context(headers={"X-Request-ID": "req-42"}):
        ext(app).log_event("billing", "charge", "alice@example.com", amountCents=1200)
    ext(app).log_event("jobs", "nightly", None)  # outside any request
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    assert len(lines) == 2
    first, second = lines
    assert first["event"] == "usage" and first["action"] == "billing.charge"
    assert first["amount_cents"] == 1200 and first["request_id"] == "req-42"
    assert first["pseudonym_id"] == hmac.new(b"test-secret", b"alice@example.com",
                                             hashlib.sha256).hexdigest()
    assert first["timestamp"].endswith("+00:00")
    assert all(k == k.lower() and " " not in k for k in first)
    assert "alice" not in json.dumps(lines)
    assert "request_id" not in second
    assert second["pseudonym_id"] == hmac.new(b"test-secret", b"unknown",
                                              hashlib.sha256).hexdigest()


def test_missing_secret_fails_closed(influx: Influx, tmp_path: Any) -> None:
    app = create_app(ANALYTICS_PERMITTED_DOMAINS="example.com",
                     ANALYTICS_STATE_DIR=str(tmp_path), **influx.creds.as_env())
    with pytest.raises(ConfigError, match="ANALYTICS_HMAC_SECRET"):
        ext(app).log_event("m", "f", "user")
    with pytest.raises(ConfigError, match="ANALYTICS_HMAC_SECRET"):
        ext(app).track("m.f")
    app.extensions["analytics"].close()


@pytest.mark.parametrize("bad", [{"bad name": 1}, {"pseudonym_id": "x"}, {"obj": object()}])
def test_bad_usage_fields_are_refused(make_app: Any, bad: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        Usage._clean_fields(bad)


def test_counts_exact_under_concurrent_threads(make_app: Any, influx: Influx,
                                               bucket: str) -> None:
    app = make_app()
    analytics = ext(app)

    def work() -> None:
        for i in range(1000):
            analytics.count("download", "files" if i % 2 else "docs")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flush(app)
    totals = influx.query('from(bucket: b) |> range(start: 0) |> filter(fn: (r) => '
                          'r._measurement == "usage_count") |> group(columns: ["category"]) '
                          '|> sum() |> group()', b=bucket)
    assert {r["category"]: r["_value"] for r in totals} == {"files": 4000, "docs": 4000}


def test_seen_counts_distinct_identifiers_exactly(make_app: Any, influx: Influx,
                                                  bucket: str) -> None:
    app = make_app()
    analytics = ext(app)
    new_flags: list[bool] = []
    lock = threading.Lock()

    def work(offset: int) -> None:
        for i in range(300):
            flag = analytics.seen(f"user-{(i + offset) % 500}", "logins")
            with lock:
                new_flags.append(flag)

    threads = [threading.Thread(target=work, args=(k * 100,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(new_flags) == 500
    assert analytics.seen("user-1", "logins") is False
    assert analytics.seen("user-1", "other-category") is True
    flush(app)
    latest = influx.query('from(bucket: b) |> range(start: 0) |> filter(fn: (r) => '
                          'r._measurement == "usage_seen") |> group(columns: ["category"]) '
                          '|> last() |> group()', b=bucket)
    assert {r["category"]: r["_value"] for r in latest} == {"logins": 500, "other-category": 1}
    stored = json.dumps(influx.raw_rows(bucket), default=str)
    assert "user-1" not in stored


def marks_once_golive_is_decided(app: Any, influx: Influx, bucket: str) -> list[tuple[str, str]]:
    """The marks, once the writer's background golive decision is done and delivered."""
    flush(app)
    return sorted((r["category"], r["name"]) for r in rows(influx, bucket, "mark"))


def test_marks_and_golive(make_app: Any, influx: Influx, bucket: str, tmp_path: Path) -> None:
    app = make_app()
    ext(app).mark("deploy 1.2.3")
    ext(app).mark("config change", category="ops")
    got = marks_once_golive_is_decided(app, influx, bucket)
    assert got == [("ops", "config change"), ("timeline", "deploy 1.2.3"), ("timeline", "golive")]
    second = make_app()  # same host and bucket: golive is recorded once only
    ext(second).mark("again")
    # a new state folder (another host, or a wiped one) on the same bucket: still no second golive
    third = make_app(ANALYTICS_STATE_DIR=str(tmp_path / "another-host"))
    ext(third).mark("elsewhere")
    marks_once_golive_is_decided(second, influx, bucket)
    names = [name for _, name in marks_once_golive_is_decided(third, influx, bucket)]
    assert names.count("golive") == 1 and "again" in names and "elsewhere" in names


def test_track_decorator_logs_duration_and_outcome(make_app: Any, influx: Influx,
                                                   bucket: str) -> None:
    app = make_app()
    analytics = ext(app)

    @analytics.track("reports.build")
    def build(fail: bool) -> str:
        if fail:
            raise RuntimeError("boom")
        return "ok"

    assert build(False) == "ok"
    with pytest.raises(RuntimeError):
        build(True)
    flush(app)
    got = sorted((r["action"], r["ok"]) for r in rows(influx, bucket, "usage"))
    assert got == [("reports.build", False), ("reports.build", True)]
    assert all(r["duration_ms"] >= 0 for r in rows(influx, bucket, "usage"))
