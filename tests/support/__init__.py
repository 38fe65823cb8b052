"""What the tests share: one InfluxDB per run and fresh buckets (influx), builds and commands
(build), real servers (servers), beacons (web), real Chromium (browser) and the rollup dataset
(datasets). Test modules import from here, never from each other."""
