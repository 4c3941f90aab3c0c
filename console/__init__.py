"""carwash-console: the site manager's desktop program (PySide6 + qasync)."""

from fleet_common.version import VERSION as __version__

__all__ = ["__version__"]
