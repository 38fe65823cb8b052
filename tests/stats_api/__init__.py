"""The Stats API: its planner without InfluxDB, its answers on a real one."""
