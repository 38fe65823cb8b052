"""Beacons as a browser sends them, and what InfluxDB stored from them."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask

from tests.support.influx import Influx

CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
CLIENT_IP = "203.0.113.77"


def post(app: Flask, kind: str, payload: Any, ua: str = CHROME_UA, ip: str = CLIENT_IP,
         **headers: str) -> Any:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    hdrs = {"User-Agent": ua, "Content-Type": "text/plain;charset=UTF-8", **headers}
    return app.test_client().post(f"/analytics/{kind}", data=data, headers=hdrs,
                                  environ_base={"REMOTE_ADDR": ip})


def stored(influx: Influx, bucket: str, measurement: str) -> list[dict[str, Any]]:
    return influx.query(
        'from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement == m) '
        '|> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value") '
        '|> drop(columns: ["_start", "_stop", "_measurement"]) |> group()',
        b=bucket, m=measurement)
