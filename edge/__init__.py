"""carwash-edge: the headless service on each bay's Raspberry Pi.

Camera frames → snapshot cache → HTTP API; later plates, cart locks, store and sync.
"""

from fleet_common.version import VERSION as __version__

__all__ = ["__version__"]
