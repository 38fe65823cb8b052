"""The Flux tasks on a real influxd, against figures computed independently."""
