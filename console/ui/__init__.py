"""Widgets: they connect to presenters' signals and call their slots; no I/O here."""
