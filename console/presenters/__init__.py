"""Presenters: one QObject per screen between the Qt-free services and the widgets.

A presenter owns the asyncio tasks of its screen, exposes what the widgets show as Qt signals and
what they ask for as slots; widgets never await a service themselves.
"""
