"""Beacons in: validation, privacy, bots and devices, the usage API."""
