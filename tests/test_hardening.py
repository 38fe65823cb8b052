"""One crafted input must never stop a worker's writes (issue 17): real influxd, real files."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analytics_bp.influx import InfluxTarget
from analytics_bp.sink import Sink

from .conftest import Influx, flush
from .test_collector import post, stored

LONE = "\ud800"
PV = {"domain": "example.com", "page": "/ok", "referrer": "https://t.co/", "timezone": 60,
      "platform": "Linux x86_64", "sess_id": "s-1", "pages": 1, "load_ms": 10}
EV = {"domain": "example.com", "page": "/ok", "event": "socialclick", "note": "x", "sess_id": "s-1"}


def raw_json(payload: dict[str, Any]) -> bytes:
    """json.dumps escapes a lone surrogate as \\ud800: exactly what an attacker sends."""
    return json.dumps(payload).encode()


FIELD_CASES = [(kind, field) for kind, base in (("pageview", PV), ("event", EV)) for field in base
               if isinstance(base[field], str)]


@pytest.mark.parametrize(("kind", "field"), FIELD_CASES, ids=[f"{k}-{f}" for k, f in FIELD_CASES])
def test_a_lone_surrogate_in_any_field_is_a_400_naming_it(make_app: Any, kind: str,
                                                          field: str) -> None:
    base = PV if kind == "pageview" else EV
    resp = post(make_app(), kind, raw_json({**base, field: f"a{LONE}b"}))
    assert resp.status_code == 400
    assert resp.headers["X-Analytics-Reason"] == f"bad field: {field}"


def test_a_lone_surrogate_in_an_unknown_key_or_nested_value_is_a_400(make_app: Any) -> None:
    app = make_app()
    for extra in ({f"k{LONE}": 1}, {"extra": {"deep": [f"x{LONE}"]}}):
        resp = post(app, "pageview", raw_json({**PV, **extra}))
        assert resp.status_code == 400
        assert resp.headers["X-Analytics-Reason"] == "bad field: string is not valid unicode"


def test_after_every_crafted_beacon_the_worker_still_stores(make_app: Any, influx: Influx,
                                                            bucket: str) -> None:
    """The attack of issue 17: crafted beacons, then a good one, all in one worker's buffer."""
    app = make_app(ANALYTICS_NOTE_EVENTS="socialclick")
    for kind, field in FIELD_CASES:
        base = PV if kind == "pageview" else EV
        assert post(app, kind, raw_json({**base, field: LONE})).status_code == 400
    assert post(app, "pageview", PV).status_code == 204
    assert post(app, "event", EV).status_code == 204
    flush(app)
    assert [r["page"] for r in stored(influx, bucket, "pageview")] == ["/ok"]
    assert [r["label"] for r in stored(influx, bucket, "event")] == ["x"]
    rejected = stored(influx, bucket, "rejected")
    assert sum(r["count"] for r in rejected) == len(FIELD_CASES)
    health = app.test_client().get("/analytics/health").get_json()["writer"]
    assert health["unencodable_points"] == 0 and health["rejected_points"] == 0


def test_usage_api_strings_that_utf8_cannot_encode_cost_only_their_character(
        make_app: Any, influx: Influx, bucket: str) -> None:
    app = make_app()
    analytics = app.extensions["analytics"]
    with app.app_context():
        analytics.log_event("mod", f"fn{LONE}", f"user{LONE}", note=f"n{LONE}")
        analytics.count(f"ev{LONE}", "cat")
        analytics.mark(f"release{LONE}")
        assert analytics.seen(f"id{LONE}", f"c{LONE}") is True
        assert analytics.get_pseudonymized_user_id(LONE) != analytics.get_pseudonymized_user_id("\udc00")
    flush(app)
    usage = stored(influx, bucket, "usage")
    assert [(r["action"], r["note"]) for r in usage] == [("mod.fn\ufffd", "n\ufffd")]
    assert [r["event"] for r in stored(influx, bucket, "usage_count")] == ["ev\ufffd"]
    assert [r["name"] for r in stored(influx, bucket, "mark") if r["name"] != "golive"] == ["release\ufffd"]
    assert [r["category"] for r in stored(influx, bucket, "usage_seen")] == ["c\ufffd"]


def set_aside(spool: Path) -> list[tuple[list[bytes], str]]:
    return [(f.read_bytes().splitlines(), f.with_suffix(".reason").read_text())
            for f in sorted((spool / "rejected").glob("*.lp"))]


def target_for(influx: Influx, bucket: str) -> InfluxTarget:
    return InfluxTarget(influx.creds.url, influx.creds.org, influx.creds.token, bucket)


def read(influx: Influx, bucket: str, pipeline: str = "") -> list[dict[str, Any]]:
    return influx.query(f"from(bucket: b) |> range(start: 0) {pipeline}", b=bucket)


def test_a_line_utf8_cannot_encode_is_set_aside_alone(influx: Influx, bucket: str,
                                                       tmp_path: Path) -> None:
    """Defence in depth: even a line that got past every check costs only itself."""
    target = target_for(influx, bucket)
    sink = Sink(target, str(tmp_path / "spool"), flush_interval=60)
    try:
        sink.write("m,t=a v=1i 1700000000000000000")
        sink.write(f'm,t=b v="{LONE}" 1700000000000000001')
        sink.write("m,t=c v=3i 1700000000000000002")
        assert sink.commit() == 3
        sink.deliver()
        assert sink.pending_segments() == []
        assert set_aside(tmp_path / "spool") == [
            ([b'm,t=b v="\\ud800" 1700000000000000001'], "unencodable: not valid unicode\n")]
        health = sink.health()
        assert (health["unencodable_points"], health["delivered"]) == (1, 2)
        sink.write("m,t=d v=4i 1700000000000000003")  # the next commit is unaffected
        assert sink.drain()
    finally:
        sink.close()
    rows = read(influx, bucket)
    assert sorted((r["t"], r["_value"]) for r in rows) == [("a", 1), ("c", 3), ("d", 4)]


def test_lines_influx_refuses_are_set_aside_alone_and_the_rest_delivered(
        influx: Influx, bucket: str, tmp_path: Path) -> None:
    """A refused batch is split until only the refused lines are left; only they are set aside."""
    target = target_for(influx, bucket)
    sink = Sink(target, str(tmp_path / "spool"), flush_interval=60, batch_size=100)
    base = 1700000000000000000
    try:
        sink.write(f"m,t=a v=1i {base}")
        sink.drain()
        bad = {17: f'm,t=a v="a string now" {base + 17}', 60: f"m,t=a v= {base + 60}"}
        for i in range(1, 100):
            sink.write(bad.get(i, f"m,t=a v={i}i {base + i}"))
        assert sink.drain()
        aside = set_aside(tmp_path / "spool")
        assert sorted(line for lines, _ in aside for line in lines) == sorted(
            b.encode() for b in bad.values())
        assert sink.health()["rejected_points"] == 2
        assert sink.health()["delivered"] == 98
    finally:
        sink.close()
    rows = read(influx, bucket, "|> group() |> sum()")
    assert rows[0]["_value"] == 1 + sum(range(1, 100)) - 17 - 60


COMMANDS = {
    "flask": ["flask", "analytics", "setup"],
    "gunicorn": ["gunicorn", "-c", "gunicorn.conf.py", "analytics_bp:create_app()"],
    "make run": ["python", "-m", "analytics_bp.dev.devstack"],
}


@pytest.mark.parametrize("program", list(COMMANDS))
def test_a_config_error_is_one_line_and_a_non_zero_exit(program: str, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from .servers import ROOT, VENV_BIN

    env = {**os.environ, "ANALYTICS_PERMITTED_DOMAINS": "example.com", "ANALYTICS_MAX_BODY": "10",
           "INFLUXDB_V2_URL": "http://127.0.0.1:9", "INFLUXDB_V2_ORG": "o", "INFLUXDB_V2_TOKEN": "t",
           "FLASK_APP": "analytics_bp:create_app()", "ANALYTICS_STATE_DIR": str(tmp_path),
           "ANALYTICS_BIND": "127.0.0.1:0"}
    args = COMMANDS[program]
    exe = sys.executable if args[0] == "python" else str(VENV_BIN / args[0])
    done = subprocess.run([exe, *args[1:]], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Traceback" not in output
    expected = "ANALYTICS_MAX_BODY='10': expected an integer >= 512"
    assert [line for line in output.splitlines() if expected in line] == [
        {"flask": "Error: ", "gunicorn": "gunicorn: ", "make run": "make run: "}[program] + expected]


@contextlib.contextmanager
def small_disk(path: Path, size: str = "512k") -> Iterator[Path]:
    """A real, small filesystem (tmpfs; CI runs as root) that a test can fill up."""
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"cannot mount a tmpfs (the test needs root): {done.stderr}"
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill the disk until only about `leave` bytes are free."""
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    filler.write_bytes(b"\0" * max(free - leave, 0))
    return filler


def test_a_full_disk_keeps_accepted_points_and_answers_503_until_it_has_room(
        make_app: Any, influx: Influx, bucket: str, tmp_path: Path) -> None:
    with small_disk(tmp_path / "spool") as disk:
        app = make_app(ANALYTICS_SPOOL_DIR=str(disk), ANALYTICS_FLUSH_INTERVAL=0.3)
        client = app.test_client()
        assert client.get("/analytics/health").status_code == 200  # the writer has started
        filler = fill(disk, leave=6000)
        statuses: list[tuple[str, int]] = []
        deadline = time.monotonic() + 10
        n = 0
        while time.monotonic() < deadline and not any(s == 503 for _, s in statuses[-5:]):
            n += 1
            sess = f"disk-{n}"
            resp = post(app, "pageview", {**PV, "page": f"/{sess}", "sess_id": sess})
            statuses.append((sess, resp.status_code))
            if resp.status_code == 503:
                assert resp.headers["Retry-After"] == "5"
            time.sleep(0.005)
        assert {s for _, s in statuses} == {204, 503}, "the disk never filled up"
        health = client.get("/analytics/health")
        assert health.status_code == 503
        writer = health.get_json()["writer"]
        assert "No space left on device" in writer["spool_error"]
        assert writer["buffered"] > 0  # kept in memory, not dropped
        filler.unlink()  # room again: the next commit goes through
        deadline = time.monotonic() + 10
        while client.get("/analytics/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get("/analytics/health").status_code == 200
        assert post(app, "pageview", {**PV, "page": "/after", "sess_id": "after"}).status_code == 204
        flush(app)
        accepted = sorted([s for s, code in statuses if code == 204] + ["after"])
        stored = sorted(r["page"].lstrip("/") for r in stored_rows(influx, bucket))
        assert stored == accepted  # every accepted point, once
        app.extensions["analytics"].close()


def stored_rows(influx: Influx, bucket: str) -> list[dict[str, Any]]:
    return stored(influx, bucket, "pageview")


def test_a_torn_or_damaged_segment_delivers_its_intact_lines_and_sets_aside_the_rest(
        influx: Influx, bucket: str, tmp_path: Path) -> None:
    """Real files: one segment cut short as by a crash mid-write, one with a byte changed on disk."""
    from analytics_bp.spool import Spool, frame

    base = 1700000000000000000
    spool_dir = tmp_path / "spool"
    spool = Spool(str(spool_dir), slot=999)
    cut = frame([f"torn,t=a v={i}i {base + i}".encode() for i in range(5)])
    spool.write_segment(cut[:-9])  # the last line loses its end
    damaged = bytearray(frame([f"torn,t=b v={i}i {base + 10 + i}".encode() for i in range(5)]))
    at = damaged.index(b"v=2i")
    damaged[at + 2] = ord("7")  # v=2i becomes v=7i: still valid line protocol, but not what was written
    spool.write_segment(bytes(damaged))
    spool.sync()
    sink = Sink(target_for(influx, bucket), str(spool_dir), flush_interval=60)
    try:
        assert sink.drain()
        health = sink.health()
        assert (health["delivered"], health["damaged_lines"]) == (8, 4)  # 2 points and their 2 frames
    finally:
        sink.close()
    rows = read(influx, bucket)
    assert sorted((r["t"], r["_value"]) for r in rows) == [
        ("a", 0), ("a", 1), ("a", 2), ("a", 3), ("b", 0), ("b", 1), ("b", 3), ("b", 4)]
    aside = b"".join(f.read_bytes() for f in (spool_dir / "rejected").glob("*.lp"))
    assert b"v=7i" in aside and b"torn,t=a v=" in aside
    reasons = "".join(f.read_text() for f in (spool_dir / "rejected").glob("*.reason"))
    assert reasons.count("torn or damaged spool segment") == 2


def test_the_user_agent_cache_holds_little_whatever_clients_send() -> None:
    import tracemalloc

    from analytics_bp import agents

    judge = agents.AgentJudge(0)  # every judgement final, so every one is a candidate for the cache
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(6000):  # 6,000 distinct attacker-chosen User-Agents of 8 KB each
        judge.describe(f"Mozilla/5.0 {i:05d} " + "x" * 8192)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert judge.cached() == agents.AGENT_CACHE
    assert grown < 8 * 2**20, f"{grown / 2**20:.1f} MiB"  # 6,000 x 8 KB would be 47 MiB


def test_seen_and_count_registries_are_bounded(make_app: Any, influx: Influx, bucket: str,
                                                tmp_path: Path) -> None:
    app = make_app(ANALYTICS_MAX_SEEN=5, ANALYTICS_MAX_TAG_VALUES=3)
    usage = app.extensions["analytics"]
    assert [usage.seen(f"user-{i}", "logins") for i in range(8)] == [True] * 5 + [False] * 3
    for i in range(50):  # 50 caller-chosen categories, each with its own event
        usage.count(f"event-{i}", f"category-{i}")
    flush(app)
    rows = stored(influx, bucket, "usage_seen")
    assert max(r["distinct"] for r in rows) == 5
    counted = {(r["category"], r["event"]) for r in stored(influx, bucket, "usage_count")}
    assert {c for c, _ in counted} == {"category-0", "category-1", "category-2", "(other)"}
    registries = [p for p in (tmp_path / "state" / "tags").rglob("*") if p.is_file()]
    # one for categories, one per admitted category's events (3 and `(other)`), one for seen's
    # categories, one for marks' (the `golive` mark): 50 categories opened no more
    assert len(registries) == 1 + 4 + 1 + 1


def test_a_workers_memory_stays_flat_while_influxdb_is_down(tmp_path: Path) -> None:
    """A minute of steady beacons with InfluxDB unreachable: the spool grows on disk, the worker's
    resident memory does not (generous bound: 12 MiB, where keeping the points would take more)."""
    from .servers import Gunicorn, Sender

    env = {"INFLUXDB_V2_URL": "http://127.0.0.1:9", "INFLUXDB_V2_ORG": "o", "INFLUXDB_V2_TOKEN": "t",
           "ANALYTICS_PERMITTED_DOMAINS": "example.com", "ANALYTICS_STATE_DIR": str(tmp_path / "state"),
           "ANALYTICS_ACCESS_LOG": str(tmp_path / "access.log")}
    body = json.dumps({"domain": "example.com", "page": "/" + "p" * 180, "sess_id": "s" * 60,
                       "platform": "Linux x86_64", "timezone": -60, "load_ms": 300}).encode()

    def rss(pid: int) -> int:
        status = Path(f"/proc/{pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]

    with Gunicorn(env, workers=1, ready_path="/analytics/agent.js") as server:
        [worker] = server.worker_pids()
        with Sender(server.url + "/analytics/pageview", body, rate=400) as a, \
                Sender(server.url + "/analytics/pageview", body, rate=400) as b:
            time.sleep(10)
            start = rss(worker)
            time.sleep(50)
            end = rss(worker)
        accepted = a.ok() + b.ok()
        spool = sum(f.stat().st_size for f in (tmp_path / "state" / "spool").glob("*.lp"))
    assert accepted > 10_000, accepted
    assert spool > accepted * 300  # every accepted point is on disk
    assert end - start < 12 * 2**20, f"RSS grew {(end - start) / 2**20:.1f} MiB for {accepted} points"


GOOD = json.dumps({"domain": "example.com", "page": "/odd"}).encode()
ODD_INPUTS = [
    # (name, body, headers, status, reason)
    ("utf-8 BOM", b"\xef\xbb\xbf" + GOOD, {}, 204, ""),
    ("charset utf-8", GOOD, {"Content-Type": "application/json; charset=UTF-8"}, 204, ""),
    ("charset quoted", GOOD, {"Content-Type": 'text/plain; charset="utf-8"'}, 204, ""),
    ("no content type", GOOD, {"Content-Type": ""}, 204, ""),
    ("charset latin-1", GOOD, {"Content-Type": "text/plain; charset=iso-8859-1"}, 400,
     "content type must be application/json or text/plain"),
    ("utf-16 body", json.dumps({"domain": "example.com", "page": "/"}).encode("utf-16"), {}, 400,
     "body is not a JSON object"),
    ("gzip encoding", GOOD, {"Content-Encoding": "gzip"}, 400, "content encoding not supported"),
    ("identity encoding", GOOD, {"Content-Encoding": "identity"}, 204, ""),
    ("boolean timezone", json.dumps({"domain": "example.com", "page": "/", "timezone": True}).encode(),
     {}, 400, "bad field: timezone"),
    ("float load time rounds", json.dumps({"domain": "example.com", "page": "/", "load_ms": 12.5}).encode(),
     {}, 204, ""),
    ("huge float", json.dumps({"domain": "example.com", "page": "/", "load_ms": 1e308}).encode(), {}, 400,
     "bad field: load_ms"),
    ("4,000-digit integer", b'{"domain": "example.com", "page": "/", "pages": 1' + b"0" * 4000 + b"}", {},
     400, "bad field: pages"),
    ("empty domain", json.dumps({"domain": "", "page": "/"}).encode(), {}, 400, "missing field: domain"),
    ("port on the domain", json.dumps({"domain": "example.com:8080", "page": "/"}).encode(), {}, 400,
     "bad field: domain"),
]


@pytest.mark.parametrize(("name", "body", "headers", "status", "reason"), ODD_INPUTS,
                         ids=[o[0] for o in ODD_INPUTS])
def test_odd_but_valid_inputs_follow_the_documented_policy(make_app: Any, name: str, body: bytes,
                                                           headers: dict[str, str], status: int,
                                                           reason: str) -> None:
    resp = post(make_app(), "pageview", body, **headers)
    assert resp.status_code == status
    assert resp.headers.get("X-Analytics-Reason", "") == reason


def test_a_writer_faster_than_the_commit_thread_is_slowed_never_dropped(
        influx: Influx, bucket: str, tmp_path: Path) -> None:
    """What `make bench` caught: a bulk writer (the usage API in a loop, the demo month) must not
    lose points to the buffer's cap while the disk takes writes."""
    sink = Sink(target_for(influx, bucket), str(tmp_path / "spool"), flush_interval=60,
                max_buffered=1000)
    try:
        for i in range(25_000):
            sink.write(f"bulk,t=a v=1i {1700000000000000000 + i}")
        assert sink.drain(timeout=60)
        assert sink.health()["dropped_points"] == 0
    finally:
        sink.close()
    assert read(influx, bucket, "|> group() |> count()")[0]["_value"] == 25_000
