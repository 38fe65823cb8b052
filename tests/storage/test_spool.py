"""The spool between the collector and InfluxDB: lines set aside alone, full disks, torn segments,
bounded memory, and a writer faster than its commit thread."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from analytics_bp.influx import InfluxTarget
from analytics_bp.sink import Sink
from tests.support.influx import Influx, flush
from tests.support.web import post, stored

LONE = "\ud800"
PV = {"domain": "example.com", "page": "/ok", "referrer": "https://t.co/", "timezone": 60,
      "platform": "Linux x86_64", "sess_id": "s-1", "pages": 1, "load_ms": 10}


def test_set_aside_lines_are_deleted_after_the_raw_retention(make_app: Any, tmp_path: Path) -> None:
    import os
    import time

    app = make_app(ANALYTICS_RAW_RETENTION="2d")
    rejected = Path(app.extensions["analytics"].config.spool_dir) / "rejected"
    rejected.mkdir(parents=True, exist_ok=True)
    old, fresh = rejected / "1-old.lp", rejected / "2-fresh.lp"
    for path in (old, old.with_suffix(".reason"), fresh, fresh.with_suffix(".reason")):
        path.write_text("set aside line\n")
    three_days_ago = time.time() - 3 * 86400
    for path in (old, old.with_suffix(".reason")):
        os.utime(path, (three_days_ago, three_days_ago))
    app.extensions["analytics"].sink()  # a writer starts: it prunes
    assert sorted(p.name for p in rejected.iterdir()) == ["2-fresh.lp", "2-fresh.reason"]


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


def test_a_workers_memory_stays_flat_while_influxdb_is_down(tmp_path: Path) -> None:
    """A minute of steady beacons with InfluxDB unreachable: the spool grows on disk, the worker's
    resident memory does not (generous bound: 12 MiB, where keeping the points would take more)."""
    from tests.support.servers import Gunicorn, Sender

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
