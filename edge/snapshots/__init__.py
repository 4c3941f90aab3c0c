"""Snapshot cache: decoded frames JPEG-encoded once, kept in memory, served as bytes."""
