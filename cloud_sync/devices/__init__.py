"""Devices: enrolment, keys, heartbeats and presence, remote commands."""
